package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
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
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The TERNARY base-3 tiles (base3_tiles.c) called directly, in whatever implementation this run selected (the build
 * runs the tests on the best one, AVX2 and the portable C): repacked from either file layout tile range by tile
 * range, with one scale a row or a scale per group, run over uneven ranges of tiles, every result equal to the scalar
 * reference's bit for bit. The backend's own use of them (AVX-512) is in the shared conformance shapes too.
 */
class NativeBase3TilesTest {

    /**
     * One tile, a short last chunk of 9 values, K not a multiple of 9, of 32 or of 128, and ranges of 13 and 26
     * tiles (eight, four, two, one at a time); groups of 256 (TQ2_0's), of 128, of 1000 (a chunk cut by the group)
     * and of 9 and 32, the last group cut short by K or whole.
     */
    @ParameterizedTest(name = "{0} x {1}, {2}, layout {3}")
    @CsvSource({"1, 1, ternary, 0", "1, 1, ternary, 1", "31, 15, ternary, 1", "33, 17, ternary, 0",
        "200, 1030, ternary, 1", "130, 4096, ternary, 0", "257, 333, ternary, 1", "64, 9000, ternary, 1",
        "600, 100, ternary, 0", "1000, 48, ternary, 1", "416, 14336, ternary, 1", "416, 14336, ternary@256, 1",
        "97, 1030, ternary@256, 0", "300, 2048, ternary@256, 1", "33, 768, ternary@128, 0", "70, 3100, ternary@1000, 1",
        "40, 100, ternary@9, 1", "45, 200, ternary@32, 0", "3, 300, ternary@512, 1"})
    void tilesGiveTheReferenceResult(int rows, int cols, String quant, int layout) {
        Random rnd = new Random(rows * 131L + cols + layout + quant.hashCode());
        assertTilesGiveTheReferenceResult(rows, cols, quant, layout, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                TestTensors.gaussian(rnd, cols, 1f));
    }

    /**
     * Every weight of one sign and every code 127 or -127: each row's int16 sum takes its largest magnitude in every
     * run of 28 chunks (28 x 9 x 127 = 32004), so a run one chunk longer would wrap, with one scale a row and in
     * groups of 252 values (one run each) and 256 (a run and a chunk of 4). Codes of -128 below.
     */
    @ParameterizedTest(name = "{0}, weights {1}, codes {2}")
    @CsvSource({"ternary, 0.1, 1", "ternary, 0.1, -1", "ternary, -0.1, 1", "ternary@252, 0.1, 1",
        "ternary@256, -0.1, 1"})
    void largestSumsDoNotOverflow(String quant, float weight, float activation) {
        int rows = 520; // 17 tiles: the last range runs eight, two and one at a time
        int cols = 28 * 9 * 20 + 5; // 20 runs of 28 chunks and a short chunk
        float[] w = new float[rows * cols];
        Arrays.fill(w, weight);
        float[] x = new float[cols];
        Arrays.fill(x, activation);
        assertTilesGiveTheReferenceResult(rows, cols, quant, 1, w, x);
    }

    /**
     * Codes of -128, which the quantizer never gives but the C functions take: 28 x 9 x 128 = 32256 still fits a run.
     * The expected result is the reference's float steps over the decoded codes, since the reference backend
     * quantizes its own activations.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"ternary", "ternary@252", "ternary@256"})
    void codesOfMinus128DoNotOverflow(String quant) {
        NativeAvailability.assumeLoaded();
        int rows = 40;
        int cols = 28 * 9 * 3 + 5;
        EncodedTensor t = PackedCodes.relayout(CodeOracle.everyWeightNegative(quant, rows, cols));
        long group = t.spec().effectiveGroupSize();
        byte[] q = CodeOracle.minus128(cols);
        try (Backend backend = Backends.create("native", 2); Arena arena = Arena.ofConfined()) {
            NativeKernels kernels = NativeLibrary.kernels();
            MemorySegment w = CodeOracle.nativeCopy(arena, t);
            float[] expected = CodeOracle.expected(t, w, q, CodeOracle.X_SCALE);
            MemorySegment tiles = arena.allocate(kernels.base3TilesBytes(rows, cols, group));
            assertEquals(0, kernels.base3TilesRepack(w, 1, cols, group, t.spec().scalesOffset(), rows, 0, 2, tiles));
            MemorySegment tables = arena.allocate(kernels.base3TablesBytes(cols, group));
            kernels.base3Tables(MemorySegment.ofArray(q), cols, group, tables);
            MemorySegment y = arena.allocate(4L * rows);
            kernels.matmulBase3Tiles(false, tiles, cols, group, rows, tables, CodeOracle.X_SCALE, y, 0, 2);
            assertArrayEquals(expected, y.toArray(ValueLayout.JAVA_FLOAT), "isa " + kernels.isa());
        }
    }

    private static void assertTilesGiveTheReferenceResult(int rows, int cols, String quant, int layout,
                                                          float[] weights, float[] x) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) { // selects the implementation this run asks for
            NativeKernels kernels = NativeLibrary.kernels();
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, weights, QuantSpec.parse(quant),
                    ActivationHint.INT8);
            if (layout == 1) {
                t = PackedCodes.relayout(t);
            }
            assertEquals(layout, t.spec().layout());
            long group = t.spec().effectiveGroupSize();
            float[] expected = BackendConformance.matmul(new ScalarBackend(), BackendConformance.placed(t, 0), x, 1);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment w = arena.allocate(t.bytes().length + 3L).asSlice(3); // misaligned on purpose
                MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
                int tiles = (rows + 31) / 32;
                MemorySegment tileBytes = arena.allocate(kernels.base3TilesBytes(rows, cols, group));
                for (int t0 = 0; t0 < tiles; t0 += 3) { // repacked in uneven ranges
                    assertEquals(0, kernels.base3TilesRepack(w, layout, cols, group, t.spec().scalesOffset(), rows,
                            t0, Math.min(tiles, t0 + 3), tileBytes));
                }
                byte[] q = new byte[cols];
                float xScale = kernels.quantizeI8(MemorySegment.ofArray(x), cols, MemorySegment.ofArray(q));
                MemorySegment tables = arena.allocate(kernels.base3TablesBytes(cols, group));
                kernels.base3Tables(MemorySegment.ofArray(q), cols, group, tables);
                MemorySegment y = arena.allocate(4L * rows);
                int[] cuts = {0, Math.min(tiles, 1), Math.min(tiles, 6), tiles}; // one, then five, then the rest
                for (int i = 0; i + 1 < cuts.length; i++) {
                    kernels.matmulBase3Tiles(false, tileBytes, cols, group, rows, tables, xScale, y, cuts[i],
                            cuts[i + 1]);
                }
                assertArrayEquals(expected, y.toArray(ValueLayout.JAVA_FLOAT), "isa " + kernels.isa());
            }
        }
    }

    /** A packed field of 3 (no code) is counted, so that the backend keeps the file's kernels, which refuse it. */
    @Test
    void aFieldOfThreeIsCounted() {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2); Arena arena = Arena.ofConfined()) {
            NativeKernels kernels = NativeLibrary.kernels();
            EncodedTensor t = PackedCodes.relayout(Quantizer.quantize("w", new long[] {40, 256},
                    TestTensors.gaussian(new Random(3), 40 * 256, 0.1f), QuantSpec.parse("ternary"),
                    ActivationHint.INT8));
            MemorySegment w = arena.allocate(t.bytes().length);
            MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
            w.set(ValueLayout.JAVA_BYTE, 64L * 3 + 5, (byte) 0xC0); // row 1, block 0: a field of 3, three of 0
            MemorySegment tiles = arena.allocate(kernels.base3TilesBytes(40, 256, 256));
            assertEquals(1, kernels.base3TilesRepack(w, 1, 256, 256, t.spec().scalesOffset(), 40, 0, 2, tiles));
        }
    }

    /** Where the AVX-512 build runs, the backend tiles ternary with INT8 activations (one scale a row or groups). */
    @Test
    void theBackendTilesOnlyWhatTheKernelTakes() {
        TileRouting.assertBackendTilesOnlyWhatTheKernelTakes("ternary", Base3TileWeights.class, true);
    }
}
