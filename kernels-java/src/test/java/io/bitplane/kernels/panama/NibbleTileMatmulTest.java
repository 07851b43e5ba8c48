package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link NibbleTileMatmul} (INT4, and ternary in groups, x INT8 on tiles of four fields per lane: INT4's kernel at
 * every width, grouped ternary's on machines without vpermw) and, for batches of INT4, {@link Int4BatchMatmul} on
 * the same tiles, against the scalar oracle, on a backend without the lookup-table tiles whatever this machine
 * would choose (and INT4 on the default backend too). Integer sums, so results must be equal bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NibbleTileMatmulTest {
    private final Backend nibbleTiles = new PanamaBackend(2, false);
    private final Backend defaultBackend = new PanamaBackend(2);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        nibbleTiles.close();
        defaultBackend.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3} packed {4}")
    @CsvSource({
        // one row, a partial tile, a whole tile (16 or 32 rows), one row past it; K below, at and past a step (16);
        // tiles past the last whole pass of three (one or two, which read the pass's first tile again), and none
        "int4, 1, 1, 1, false", "int4, 1, 3, 2, true", "int4, 15, 16, 1, false", "int4, 17, 17, 3, true",
        "int4, 49, 24, 2, true", "int4, 100, 48, 1, true", "int4-asym, 150, 40, 2, false", "int4, 96, 32, 1, false",
        "int4, 33, 64, 1, false", "int4, 5, 100, 2, true",
        // rows longer than one int16 run (64 values), split across threads, batches
        "int4, 40, 1030, 1, true", "int4, 3, 4100, 2, false", "int4, 700, 512, 1, true", "int4, 300, 2048, 9, false",
        // groups ending inside a step (8, 24, 40 values: the sums widen at the group's end), of one step, of
        // several, with a short last group
        "int4@8, 17, 100, 1, false", "int4@16, 17, 100, 1, false", "int4@32, 33, 1030, 2, true",
        "int4@32, 31, 4096, 1, false", "int4@64, 9, 200, 1, true", "int4@128, 31, 1000, 3, false",
        "int4@40, 5, 300, 1, true", "int4@24, 9, 200, 2, false",
        "int4-asym@32, 15, 640, 2, false", "int4-asym@64, 31, 200, 1, true", "int4-asym@128, 2, 2048, 3, true",
        "int4-asym, 7, 90, 1, false",
        // ternary in groups (packed or planes), fields code + 1
        "ternary@32, 17, 100, 1, true", "ternary@64, 33, 1030, 2, true", "ternary@128, 5, 4100, 1, false",
        "ternary@256, 31, 1000, 3, true", "ternary@16, 3, 77, 1, false"})
    void matchesTheOracle(String spec, int rows, int cols, int batch, boolean packed) {
        Random rnd = new Random(rows * 61L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
        t = packed ? PackedCodes.relayout(t) : t;
        assertTrue(NibbleTileMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertInstanceOf(RepackedWeights.class, nibbleTiles.upload(placed), "the backend takes the nibble tiles");
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(nibbleTiles, placed, x, batch), spec + " misaligned by " + misalign);
        }
    }

    /**
     * Batches of {@link Int4BatchMatmul#MIN_BATCH} tokens and more take {@link Int4BatchMatmul} where groups are
     * whole chunks of 16 values: whole and partial register blocks of tokens, groups of one chunk, one run, several
     * runs and the whole row, K ending inside a chunk; smaller batches, and groups ending inside a chunk (8, 24),
     * stay on the one-token kernel, token by token.
     */
    @ParameterizedTest(name = "{0} {1}x{2} batch {3} packed {4}")
    @CsvSource({
        "int4@32, 1, 32, 16, false", "int4@32, 17, 100, 17, true", "int4@32, 33, 1030, 24, false",
        "int4@16, 5, 48, 21, true", "int4@128, 40, 1000, 16, true", "int4, 9, 300, 23, false",
        "int4, 3, 4100, 16, true", "int4-asym@32, 15, 640, 18, false", "int4-asym@64, 31, 200, 16, true",
        "int4-asym@128, 2, 2048, 17, true", "int4-asym, 7, 90, 16, false", "int4@32, 600, 512, 33, true",
        "int4@32, 17, 100, 8, false", "int4-asym@64, 31, 200, 9, true", "int4@8, 17, 100, 17, false",
        "int4@24, 9, 200, 16, true"})
    void int4BatchesMatchTheOracle(String spec, int rows, int cols, int batch, boolean packed) {
        matchesTheOracle(spec, rows, cols, batch, packed);
    }

    /** INT4 with INT8 activations takes the nibble tiles on the backend this machine chooses too, one token or many. */
    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({"int4@32, 33, 1030, 1", "int4-asym@64, 31, 200, 9", "int4, 40, 1000, 2", "int4@32, 17, 100, 17"})
    void int4TakesTheNibbleTilesOnTheDefaultBackend(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 67L + cols);
        EncodedTensor t = PackedCodes.relayout(Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        BpmTensor placed = BackendConformance.placed(t, 0);
        assertInstanceOf(RepackedWeights.class, defaultBackend.upload(placed), "the backend takes the nibble tiles");
        assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                BackendConformance.matmul(defaultBackend, placed, x, batch), spec);
    }

    /**
     * Fields nearly all 15 and codes all 127 (or -127) over long groups: a step's exact sum reaches 16 x 15 x 127 =
     * 30480 per lane, and must leave int16 lanes after each step (two steps would wrap).
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"int4@2048", "int4-asym@2048", "int4"})
    void largestSumsDoNotOverflow(String spec) {
        int rows = 33;
        int cols = 8192;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = i % 97 == 0 ? -0.1f : 0.1f;  // the row's extremes: fields 0 and 15, nearly all 15
        }
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, w, QuantSpec.parse(spec),
                ActivationHint.INT8);
        float[] x = new float[2 * cols];
        Arrays.fill(x, 1f);
        Arrays.fill(x, cols, 2 * cols, -1f);
        BpmTensor placed = BackendConformance.placed(PackedCodes.relayout(t), 0);
        assertArrayEquals(BackendConformance.matmul(oracle, placed, x, 2),
                BackendConformance.matmul(nibbleTiles, placed, x, 2));
        // a batch (Int4BatchMatmul): fields 0 and 15 are u - 8 = -8 and 7, against codes 127 and -127
        int batch = Int4BatchMatmul.MIN_BATCH + 1;
        float[] xs = new float[batch * cols];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = i / cols % 2 == 0 ? 1f : -1f;
        }
        assertArrayEquals(BackendConformance.matmul(oracle, placed, xs, batch),
                BackendConformance.matmul(nibbleTiles, placed, xs, batch));
    }

    /**
     * INT4 and INT4_ASYM with INT8 activations in groups of whole steps, and ternary in groups (one scale per row
     * stays on the row-major kernel, faster there); binary only at 128 bits (8 rows a tile); not other groups or
     * activations.
     */
    @Test
    void takesInt4AndGroupedTernaryWithInt8ActivationsInGroupsOfWholeSteps() {
        assertTrue(NibbleTileMatmul.supports(spec("int4@32", ActivationHint.INT8, false)));
        assertTrue(NibbleTileMatmul.supports(spec("int4-asym@16", ActivationHint.INT8, true)));
        assertTrue(NibbleTileMatmul.supports(spec("ternary@64", ActivationHint.INT8, true)));
        assertTrue(NibbleTileMatmul.supports(spec("ternary@64", ActivationHint.INT8, false)));
        assertFalse(NibbleTileMatmul.supports(spec("ternary", ActivationHint.INT8, true)));
        assertFalse(NibbleTileMatmul.supports(spec("int4@4", ActivationHint.INT8, false)));
        assertFalse(NibbleTileMatmul.supports(spec("int4@32", ActivationHint.F32, false)));
        assertEquals(TileRows.ROWS == 8, NibbleTileMatmul.supports(spec("binary", ActivationHint.INT8, false)));
        assertEquals(TileRows.ROWS == 8, NibbleTileMatmul.supports(spec("binary@64", ActivationHint.INT8, false)));
        assertFalse(NibbleTileMatmul.supports(spec("binary", ActivationHint.F32, false)));
    }

    private static io.bitplane.format.TensorSpec spec(String quant, ActivationHint activations, boolean packed) {
        EncodedTensor t = Quantizer.quantize("w", new long[] {4, 256}, new float[4 * 256], QuantSpec.parse(quant),
                activations);
        return (packed ? PackedCodes.relayout(t) : t).spec();
    }
}
