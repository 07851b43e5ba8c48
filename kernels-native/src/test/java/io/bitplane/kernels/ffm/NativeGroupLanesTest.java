package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/**
 * The group lanes (group_lanes.c) called directly, in whatever implementation this run selected (the build runs the
 * tests on the best one, AVX2 and the portable C): INT8 rows, INT4 and INT4_ASYM bit planes and packed codes
 * repacked in uneven ranges of blocks of eight rows from misaligned bytes, run over uneven ranges of blocks for one
 * to three tokens, every result equal to the scalar reference's bit for bit. The backend's own use of them (INT4
 * where the AVX2 or AVX-512 build runs, INT8 on AVX-512) is in the shared conformance shapes.
 */
class NativeGroupLanesTest {

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({"int8@32, 1, 512, 1", "int8@32, 9, 1024, 2", "int8@32, 17, 2048, 1", "int4@32, 1, 512, 1",
        "int4@32, 7, 1536, 3", "int4@32, 33, 2048, 1", "int4@32 packed, 9, 1024, 1", "int4@32 packed, 16, 512, 2",
        "int8@32, 40, 5632, 1", "int4@32, 8, 14336, 1", "int8@32, 30, 512, 2", "int4@32, 26, 1024, 1",
        "int4-asym@32, 9, 1024, 2", "int4-asym@32 packed, 17, 512, 1", "int4-asym@32, 1, 2048, 3"})
    void lanesGiveTheReferenceResult(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 131L + cols);
        assertLanesGiveTheReferenceResult(spec, rows, cols, batch, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                TestTensors.gaussian(rnd, batch * cols, 1f));
    }

    /**
     * INT4 codes 7 (u = 15) but each group's first (its extreme, -8 or u = 0, so that the others get 7), and every
     * activation code 127 or -127: the AVX2 build's int16 pair sums take a super-block's eight products near their
     * largest (8 x 2 x 15 x 127 = 30480), so summing a ninth, or carrying them from one super-block to the next,
     * would wrap.
     */
    @ParameterizedTest(name = "{0} codes {1}")
    @CsvSource({"int4@32, 1", "int4@32, -1", "int4@32 packed, 1", "int4-asym@32, -1"})
    void largestSumsDoNotOverflow(String spec, float activation) {
        int rows = 9;
        int cols = 2048; // four super-blocks
        float[] w = new float[rows * cols];
        Arrays.fill(w, 0.0875f);
        for (int i = 0; i < w.length; i += 32) {
            w[i] = -0.1f;
        }
        float[] x = new float[cols];
        Arrays.fill(x, activation);
        assertLanesGiveTheReferenceResult(spec, rows, cols, 1, w, x);
    }

    private static void assertLanesGiveTheReferenceResult(String spec, int rows, int cols, int batch, float[] weights,
                                                          float[] x) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) { // selects the implementation this run asks for
            NativeKernels kernels = NativeLibrary.kernels();
            boolean packed = spec.endsWith(" packed");
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, weights,
                    QuantSpec.parse(spec.split(" ")[0]), ActivationHint.INT8);
            if (packed) {
                t = PackedCodes.relayout(t);
            }
            float[] expected = BackendConformance.matmul(new ScalarBackend(), BackendConformance.placed(t, 0), x,
                    batch);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment w = arena.allocate(t.bytes().length + 3L).asSlice(3); // misaligned on purpose
                MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
                int encoding = t.spec().encoding().id;
                MemorySegment lanes = arena.allocate(kernels.groupLanesBytes(encoding, rows, cols) + 5).asSlice(5);
                int blocks = (rows + 7) / 8;
                for (int b0 = 0; b0 < blocks; b0 += 3) { // repacked in uneven ranges
                    kernels.groupLanesRepack(w, encoding, t.spec().layout(), cols, rows, t.spec().scalesOffset(),
                            t.spec().encoding().hasMins() ? t.spec().minsOffset() : 0, b0, Math.min(blocks, b0 + 3),
                            lanes);
                }
                byte[] q = new byte[batch * cols];
                MemorySegment xScales = arena.allocate(4L * batch);
                for (int b = 0; b < batch; b++) {
                    xScales.setAtIndex(ValueLayout.JAVA_FLOAT, b, kernels.quantizeI8(
                            MemorySegment.ofArray(x).asSlice(4L * b * cols, 4L * cols), cols,
                            MemorySegment.ofArray(q).asSlice((long) b * cols, cols)));
                }
                MemorySegment xq = arena.allocate(q.length);
                MemorySegment.copy(q, 0, xq, ValueLayout.JAVA_BYTE, 0, q.length);
                MemorySegment y = arena.allocate(4L * batch * rows);
                MemorySegment scratch = arena.allocate(kernels.scratchBytes(cols, 32, 1), 64);
                int[] cuts = {0, Math.min(blocks, 1), Math.min(blocks, 3), blocks}; // one, then two, then the rest
                for (int i = 0; i + 1 < cuts.length; i++) {
                    kernels.matmulGroupLanes(false, lanes, encoding, cols, rows, xq, xScales, y, batch, cuts[i],
                            cuts[i + 1], scratch);
                }
                assertArrayEquals(expected, y.toArray(ValueLayout.JAVA_FLOAT), "isa " + kernels.isa());
            }
        }
    }

    /**
     * The backend re-lays INT4 and INT4_ASYM (where the AVX2 or AVX-512 build runs) and INT8 (AVX-512 only) in
     * groups of 32 with INT8 activations and rows of whole super-blocks (512 values) only.
     */
    @Test
    void theBackendReLaysOnlyWhatTheKernelTakes() {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) {
            int isa = NativeLibrary.kernels().isa();
            Random rnd = new Random(5);
            float[] values = TestTensors.gaussian(rnd, 8 * 1024, 0.1f);
            for (String spec : new String[] {"int8@32", "int4@32", "int4-asym@32"}) {
                BpmTensor taken = tensor(new long[] {8, 1024}, values, spec, ActivationHint.INT8);
                if (spec.startsWith("int8") ? isa == NativeKernels.ISA_AVX512 : isa >= NativeKernels.ISA_AVX2) {
                    assertInstanceOf(GroupLaneWeights.class, backend.upload(taken), spec);
                } else {
                    assertNotEquals(GroupLaneWeights.class, backend.upload(taken).getClass(), spec);
                }
                BpmTensor floats = tensor(new long[] {8, 1024}, values, spec, ActivationHint.F32);
                BpmTensor partSuper = tensor(new long[] {16, 512 + 32 * 8}, values, spec, ActivationHint.INT8);
                assertNotEquals(GroupLaneWeights.class, backend.upload(floats).getClass(), spec);
                assertNotEquals(GroupLaneWeights.class, backend.upload(partSuper).getClass(), spec);
            }
            BpmTensor groups64 = tensor(new long[] {8, 1024}, values, "int4@64", ActivationHint.INT8);
            BpmTensor ternary = tensor(new long[] {8, 1024}, values, "ternary@32", ActivationHint.INT8);
            assertNotEquals(GroupLaneWeights.class, backend.upload(groups64).getClass());
            assertNotEquals(GroupLaneWeights.class, backend.upload(ternary).getClass());
        }
    }

    private static BpmTensor tensor(long[] shape, float[] values, String spec, ActivationHint activations) {
        int count = (int) (shape[0] * shape[1]);
        return BackendConformance.placed(Quantizer.quantize("w", shape, java.util.Arrays.copyOf(values, count),
                QuantSpec.parse(spec), activations), 0);
    }
}
