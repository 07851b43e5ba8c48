package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Halfs;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;
import io.bitplane.format.TestTensors;
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

/**
 * The BINARY lookup-table tiles (sign_tiles.c) called directly, in whatever implementation this run selected (the
 * build runs the tests on the best one, AVX2 and the portable C, which lay tiles and tables out each its own way):
 * repacked tile range by tile range, run over uneven ranges of tiles, one scale a row and groups, every result equal
 * to the scalar reference's bit for bit. The backend's own use of them (AVX2 and AVX-512) is in the shared
 * conformance shapes.
 */
class NativeSignTilesTest {

    /**
     * Shapes of one tile, of a short last chunk, and ranges of 13 and 26 tiles (eight, four, two, one at a time); in
     * groups of one chunk and more, a short last group (K not a multiple of the group), an odd number of groups, a
     * group past the int16 run of 16 chunks (512 values), of two of the AVX2 build's runs of 256 (8192), one row.
     */
    @ParameterizedTest(name = "{0} {1} x {2}")
    @CsvSource({"binary, 1, 1", "binary, 31, 15", "binary, 33, 17", "binary, 200, 1030", "binary, 130, 4096",
        "binary, 257, 333", "binary, 64, 9000", "binary, 600, 100", "binary, 1000, 48", "binary@16, 40, 100",
        "binary@32, 33, 96", "binary@48, 70, 480", "binary@64, 257, 333", "binary@128, 200, 1030",
        "binary@256, 130, 4096", "binary@256, 1, 600", "binary@512, 64, 9000", "binary@64, 600, 192",
        "binary@8192, 40, 17000"})
    void tilesGiveTheReferenceResult(String spec, int rows, int cols) {
        Random rnd = new Random(rows * 131L + cols);
        assertTilesGiveTheReferenceResult(spec, rows, cols, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                TestTensors.gaussian(rnd, cols, 1f));
    }

    /**
     * Every weight -1 (every bit set) and every code 127 or -127: each int16 sum takes its largest magnitude in
     * every run of chunks (AVX-512: 16 codes a chunk in one sum, 16 x 16 x 127 = 32512, so runs of 17 would wrap;
     * AVX2: each 16-bit sum of a code part takes 240 a chunk, 61440 over a run of 256, so a run twice as long would
     * wrap; in groups, a group of 256 values is one run, of 512 two). Codes of -128 below.
     */
    @ParameterizedTest(name = "{1} codes {0}")
    @CsvSource({"1, binary", "-1, binary", "1, binary@256", "-1, binary@512"})
    void largestSumsDoNotOverflow(float activation, String spec) {
        int rows = 520; // 17 tiles: the last range runs eight, two and one at a time
        int cols = 8192 + 16 * 3; // 32 runs of 16 chunks (AVX2: two of 256) and three chunks more
        float[] w = new float[rows * cols];
        Arrays.fill(w, -0.1f);
        float[] x = new float[cols];
        Arrays.fill(x, activation);
        assertTilesGiveTheReferenceResult(spec, rows, cols, w, x);
    }

    /**
     * Codes of -128, which the quantizer never gives but the C functions take, under every bit set: a run of 16
     * chunks reaches -32768, int16's least value (17 would wrap). The expected result is the reference's float steps
     * over the decoded codes, since the reference backend quantizes its own activations. In groups of 256 values
     * (one run a group) too.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"binary", "binary@256"})
    void codesOfMinus128DoNotOverflow(String spec) {
        NativeAvailability.assumeLoaded();
        int rows = 40;
        int cols = 16 * 16 * 3 + 16;
        EncodedTensor t = CodeOracle.everyWeightNegative(spec, rows, cols);
        long group = t.spec().effectiveGroupSize();
        byte[] q = CodeOracle.minus128(cols);
        try (Backend backend = Backends.create("native", 2); Arena arena = Arena.ofConfined()) {
            NativeKernels kernels = NativeLibrary.kernels();
            MemorySegment w = CodeOracle.nativeCopy(arena, t);
            float[] expected = CodeOracle.expected(t, w, q, CodeOracle.X_SCALE);
            MemorySegment scales = rowScales(arena, t, w);
            MemorySegment tiles = arena.allocate(kernels.signTilesBytes(rows, cols, group));
            kernels.signTilesRepack(w, cols, group, t.spec().scalesOffset(), rows, 0, 2, tiles);
            MemorySegment tables = arena.allocate(kernels.signTablesBytes(cols, group));
            MemorySegment codeSums = arena.allocate(4L * t.spec().groupsPerRow());
            kernels.signTables(MemorySegment.ofArray(q), cols, group, tables, codeSums);
            MemorySegment y = arena.allocate(4L * rows);
            kernels.matmulSignTiles(false, tiles, cols, group, rows, tables, codeSums, scales, CodeOracle.X_SCALE, y,
                    0, 2);
            assertArrayEquals(expected, y.toArray(ValueLayout.JAVA_FLOAT), "isa " + kernels.isa());
        }
    }

    /** One scale a row: the rows' scales as f32 in row order (the caller's widening); in groups none (NULL). */
    private static MemorySegment rowScales(Arena arena, EncodedTensor t, MemorySegment w) {
        if (t.spec().groupsPerRow() > 1) {
            return MemorySegment.NULL;
        }
        int rows = (int) t.spec().rows();
        MemorySegment scales = arena.allocate(4L * rows);
        for (int r = 0; r < rows; r++) {
            scales.setAtIndex(ValueLayout.JAVA_FLOAT, r, Halfs.f16ToFloat(
                    w.get(ValueLayout.JAVA_SHORT_UNALIGNED, t.spec().scalesOffset() + 2L * r)));
        }
        return scales;
    }

    private static void assertTilesGiveTheReferenceResult(String spec, int rows, int cols, float[] weights,
                                                          float[] x) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) { // selects the implementation this run asks for
            NativeKernels kernels = NativeLibrary.kernels();
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, weights, QuantSpec.parse(spec),
                    ActivationHint.INT8);
            long group = t.spec().effectiveGroupSize(); // at least K for one scale a row: one group
            int groups = (int) t.spec().groupsPerRow();
            float[] expected = BackendConformance.matmul(new ScalarBackend(), BackendConformance.placed(t, 0), x, 1);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment w = arena.allocate(t.bytes().length + 3L).asSlice(3); // misaligned on purpose
                MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
                int tiles = (rows + 31) / 32;
                MemorySegment tileBytes = arena.allocate(kernels.signTilesBytes(rows, cols, group));
                for (int t0 = 0; t0 < tiles; t0 += 3) { // repacked in uneven ranges
                    kernels.signTilesRepack(w, cols, group, t.spec().scalesOffset(), rows, t0,
                            Math.min(tiles, t0 + 3), tileBytes);
                }
                byte[] q = new byte[cols];
                float xScale = kernels.quantizeI8(MemorySegment.ofArray(x), cols, MemorySegment.ofArray(q));
                MemorySegment tables = arena.allocate(kernels.signTablesBytes(cols, group));
                MemorySegment codeSums = arena.allocate(4L * groups);
                kernels.signTables(MemorySegment.ofArray(q), cols, group, tables, codeSums);
                int[] expectedSums = new int[groups];
                for (int i = 0; i < cols; i++) {
                    expectedSums[(int) (i / group)] += q[i];
                }
                assertArrayEquals(expectedSums, codeSums.toArray(ValueLayout.JAVA_INT), "each group's sum of codes");
                MemorySegment scales = rowScales(arena, t, w);
                MemorySegment y = arena.allocate(4L * rows);
                int[] cuts = {0, Math.min(tiles, 1), Math.min(tiles, 6), tiles}; // one, then five, then the rest
                for (int i = 0; i + 1 < cuts.length; i++) {
                    kernels.matmulSignTiles(false, tileBytes, cols, group, rows, tables, codeSums, scales, xScale, y,
                            cuts[i], cuts[i + 1]);
                }
                assertArrayEquals(expected, y.toArray(ValueLayout.JAVA_FLOAT), "isa " + kernels.isa());
            }
        }
    }

    /** Where the AVX2 or AVX-512 build runs, the backend tiles INT8 activations, one scale a row or groups. */
    @Test
    void theBackendTilesOnlyWhatTheKernelTakes() {
        TileRouting.assertBackendTilesOnlyWhatTheKernelTakes("binary", SignTileWeights.class, true);
    }
}
