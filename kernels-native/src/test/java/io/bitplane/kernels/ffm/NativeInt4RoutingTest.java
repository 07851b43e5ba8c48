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
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Where the native backend puts INT4 x INT8 tensors (and INT8 x INT8 ones, below): into its group lanes where they
 * take them (AVX2 and AVX-512 builds, K a multiple of 512), else onto the Java backend's nibble tiles, whose products
 * are faster there (NativeBackend's class comment). One token and small batches then run on the tiles, larger batches
 * on the file's bytes in C (or on the tiles too, where the bytes are on the heap, as a model converted at load has
 * them); every result is the oracle's bit for bit either way, so a token's result does not depend on its batch.
 */
class NativeInt4RoutingTest {

    /**
     * INT8 x INT8 alike on the AVX-512 build (the Java INT8 tiles beat the general C path there), and in C on the
     * others (their C kernel is faster for large tensors): every result the oracle's.
     */
    @ParameterizedTest(name = "{0} {1}x{2} on the heap {3}")
    @CsvSource({"int8@32, 172, 64, false", "int8, 33, 100, false", "int8@64, 17, 1024, false",
        "int8@32, 9, 2048, false", "int8@32, 64, 172, true"})
    void int8OutsideTheLanesRunsOnTheJavaTilesOnTheAvx512Build(String spec, int rows, int cols, boolean heap) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) {
            Random rnd = new Random(rows * 41L + cols);
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                    TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
            BpmTensor placed = heap ? new BpmTensor(t.spec(), MemorySegment.ofArray(t.bytes()), 0, 0)
                    : BackendConformance.placed(t, 3);
            Weights w = backend.upload(placed);
            boolean avx512 = NativeLibrary.kernels().isa() == NativeKernels.ISA_AVX512;
            assertEquals(avx512, backend.description().contains("INT8 x INT8"), backend.description());
            if (avx512 && cols % 512 == 0 && spec.startsWith("int8@32")) {
                assertInstanceOf(GroupLaneWeights.class, w, spec + " " + rows + "x" + cols);
            } else if (avx512) {
                assertInstanceOf(RepackedWeights.class, w);
                assertFalse(w instanceof NativeRepackedWeights, "the Java backend's tiles");
            } else {
                assertFalse(w instanceof RepackedWeights && !(w instanceof NativeRepackedWeights), "not on Java");
            }
            for (int batch : new int[] {1, 3, GroupLaneWeights.MAX_BATCH + 1, 17}) {
                float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
                float[] expected = BackendConformance.matmul(new ScalarBackend(), placed, x, batch);
                assertArrayEquals(expected, BackendConformance.matmul(backend, placed, x, batch),
                        spec + " batch " + batch);
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}x{2} packed {3} on the heap {4}")
    @CsvSource({"int4@32, 172, 64, false, false", "int4@32, 33, 100, true, false",
        "int4-asym@32, 40, 5504, true, false", "int4@128, 17, 640, false, false", "int4@32, 24, 1024, true, false",
        "int4@32, 9, 2048, false, false", "int4@32, 172, 64, false, true", "int4-asym@64, 9, 2048, true, true"})
    void int4OutsideTheLanesRunsOnTheJavaTilesAndBatchesInC(String spec, int rows, int cols, boolean packed,
                                                            boolean heap) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) {
            Random rnd = new Random(rows * 37L + cols);
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                    TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
            EncodedTensor laid = packed ? PackedCodes.relayout(t) : t;
            BpmTensor placed = heap ? new BpmTensor(laid.spec(), MemorySegment.ofArray(laid.bytes()), 0, 0)
                    : BackendConformance.placed(laid, 3);
            Weights w = backend.upload(placed);
            boolean lanes = NativeLibrary.kernels().isa() >= NativeKernels.ISA_AVX2 && cols % 512 == 0
                    && spec.startsWith("int4@32");
            assertTrue(backend.description().contains("INT4 x INT8 products outside the group lanes"),
                    backend.description());
            if (lanes) {
                assertInstanceOf(GroupLaneWeights.class, w, spec + " " + rows + "x" + cols);
            } else {
                assertInstanceOf(RepackedWeights.class, w);
                assertFalse(w instanceof NativeRepackedWeights, "the Java backend's tiles");
            }
            for (int batch : new int[] {1, 3, GroupLaneWeights.MAX_BATCH + 1, 17}) {
                float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
                float[] expected = BackendConformance.matmul(new ScalarBackend(), placed, x, batch);
                assertArrayEquals(expected, BackendConformance.matmul(backend, placed, x, batch),
                        spec + " batch " + batch);
                assertEquals(expected.length, batch * rows);
            }
        }
    }
}
