package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Halfs;
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
 * range, run over uneven ranges of tiles, every result equal to the scalar reference's bit for bit. The backend's
 * own use of them (AVX-512) is in the shared conformance shapes too.
 */
class NativeBase3TilesTest {

    /**
     * One tile, a short last chunk of 9 values, K not a multiple of 9, of 32 or of 128, and ranges of 13 and 26
     * tiles (eight, four, two, one at a time).
     */
    @ParameterizedTest(name = "{0} x {1}, layout {2}")
    @CsvSource({"1, 1, 0", "1, 1, 1", "31, 15, 1", "33, 17, 0", "200, 1030, 1", "130, 4096, 0", "257, 333, 1",
        "64, 9000, 1", "600, 100, 0", "1000, 48, 1", "416, 14336, 1"})
    void tilesGiveTheReferenceResult(int rows, int cols, int layout) {
        Random rnd = new Random(rows * 131L + cols + layout);
        assertTilesGiveTheReferenceResult(rows, cols, layout, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                TestTensors.gaussian(rnd, cols, 1f));
    }

    /**
     * Every weight of one sign and every code 127 or -127: each int16 sum takes its largest magnitude in every run
     * of 28 chunks (28 x 9 x 127 = 32004), so a run one chunk longer would wrap.
     */
    @ParameterizedTest(name = "weights {0}, codes {1}")
    @CsvSource({"0.1, 1", "0.1, -1", "-0.1, 1"})
    void largestSumsDoNotOverflow(float weight, float activation) {
        int rows = 520; // 17 tiles: the last range runs eight, two and one at a time
        int cols = 28 * 9 * 20 + 5; // 20 runs of 28 chunks and a short chunk
        float[] w = new float[rows * cols];
        Arrays.fill(w, weight);
        float[] x = new float[cols];
        Arrays.fill(x, activation);
        assertTilesGiveTheReferenceResult(rows, cols, 1, w, x);
    }

    private static void assertTilesGiveTheReferenceResult(int rows, int cols, int layout, float[] weights,
                                                          float[] x) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) { // selects the implementation this run asks for
            NativeKernels kernels = NativeLibrary.kernels();
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, weights, QuantSpec.parse("ternary"),
                    ActivationHint.INT8);
            if (layout == 1) {
                t = PackedCodes.relayout(t);
            }
            assertEquals(layout, t.spec().layout());
            float[] expected = BackendConformance.matmul(new ScalarBackend(), BackendConformance.placed(t, 0), x, 1);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment w = arena.allocate(t.bytes().length + 3L).asSlice(3); // misaligned on purpose
                MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
                int tiles = (rows + 31) / 32;
                MemorySegment tileBytes = arena.allocate(kernels.base3TilesBytes(rows, cols));
                for (int t0 = 0; t0 < tiles; t0 += 3) { // repacked in uneven ranges
                    assertEquals(0, kernels.base3TilesRepack(w, layout, cols, rows, t0, Math.min(tiles, t0 + 3),
                            tileBytes));
                }
                byte[] q = new byte[cols];
                float xScale = kernels.quantizeI8(MemorySegment.ofArray(x), cols, MemorySegment.ofArray(q));
                MemorySegment tables = arena.allocate(kernels.base3TablesBytes(cols));
                kernels.base3Tables(MemorySegment.ofArray(q), cols, tables);
                MemorySegment scales = arena.allocate(4L * rows);
                for (int r = 0; r < rows; r++) {
                    scales.setAtIndex(ValueLayout.JAVA_FLOAT, r, Halfs.f16ToFloat(
                            w.get(ValueLayout.JAVA_SHORT_UNALIGNED, t.spec().scalesOffset() + 2L * r)));
                }
                MemorySegment y = arena.allocate(4L * rows);
                int[] cuts = {0, Math.min(tiles, 1), Math.min(tiles, 6), tiles}; // one, then five, then the rest
                for (int i = 0; i + 1 < cuts.length; i++) {
                    kernels.matmulBase3Tiles(false, tileBytes, cols, rows, tables, scales, xScale, y, cuts[i],
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
            MemorySegment tiles = arena.allocate(kernels.base3TilesBytes(40, 256));
            assertEquals(1, kernels.base3TilesRepack(w, 1, 256, 40, 0, 2, tiles));
        }
    }

    /** Where the AVX-512 build runs, the backend tiles ternary of one scale a row with INT8 activations, only that. */
    @Test
    void theBackendTilesOnlyWhatTheKernelTakes() {
        TileRouting.assertBackendTilesOnlyWhatTheKernelTakes("ternary", Base3TileWeights.class);
    }
}
