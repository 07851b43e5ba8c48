package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link NibbleFloatTileMatmul} (INT4, INT4_ASYM, and at 128 bits ternary and binary, x F32 on tiles of a row per
 * 32-bit lane) against the scalar oracle. The backend takes it only where the lookup tiles and float tables do not
 * run (128-bit vectors), so the kernel is called directly here, at every width the suite runs at. Float sums in
 * another order: results agree within rounding (the conformance suite's tolerance).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NibbleFloatTileMatmulTest {
    private final WorkerPool pool = new WorkerPool(2);
    private final Backend backend = new PanamaBackend(2);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        pool.close();
        backend.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3} packed {4}")
    @CsvSource({
        // one row, a partial tile, a whole tile (4 or 8 rows), one past it, an odd number of tiles; K below, at and
        // past an octet (8), and not a multiple of one
        "int4, 1, 1, 1, false", "int4, 1, 5, 2, true", "int4, 4, 8, 1, false", "int4, 9, 9, 3, true",
        "int4, 17, 31, 1, false", "int4, 25, 64, 2, true",
        // long rows, batches, asymmetric codes (stored as u - 8)
        "int4, 40, 2200, 1, true", "int4, 3, 4501, 2, false", "int4, 300, 2048, 9, true",
        "int4-asym, 7, 90, 1, false", "int4-asym, 33, 1000, 3, true",
        // groups of one octet, of several with a short last group (cut by K inside an octet)
        "int4@8, 17, 100, 1, false", "int4@32, 33, 1030, 2, true", "int4@32, 9, 203, 1, false",
        "int4@128, 31, 1000, 3, true", "int4-asym@32, 15, 640, 2, false", "int4-asym@64, 31, 205, 1, true",
        "int4-asym@128, 2, 2048, 3, true",
        // ternary and binary codes as 4-bit codes (what the backend gives these tiles at 128 bits)
        "ternary, 9, 200, 2, true", "ternary, 33, 1030, 1, false", "ternary@256, 5, 1300, 2, true",
        "binary, 17, 129, 3, false", "binary@64, 9, 700, 1, false"})
    void matchesTheOracle(String spec, int rows, int cols, int batch, boolean packed) {
        Random rnd = new Random(rows * 73L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        t = packed ? PackedCodes.relayout(t) : t;
        TensorSpec s = t.spec();
        assertTrue(NibbleFloatTileMatmul.supports(s) || !spec.startsWith("int4"), "INT4 at every width");
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        int groups = (int) s.groupsPerRow();
        int group = (int) s.effectiveGroupSize();
        float[] xSums = new float[batch * groups];
        for (int b = 0; b < batch; b++) {
            for (int i = 0; i < cols; i++) {
                xSums[b * groups + i / group] += x[b * cols + i];
            }
        }
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            NibbleFloatTileMatmul.Tiles tiles = NibbleFloatTileMatmul.repack(s, placed.data(), pool,
                    WeightMemory.COLLECTED);
            float[] y = new float[batch * rows];
            // two ranges, the first ending inside a pair of tiles where there are three or more
            int all = NibbleFloatTileMatmul.tiles(s);
            int split = all >= 3 ? 1 : all;
            float[] sums = s.encoding() == Encoding.INT4_ASYM ? xSums : null;
            NibbleFloatTileMatmul.tiles(s, tiles, x, sums, y, batch, 0, split);
            NibbleFloatTileMatmul.tiles(s, tiles, x, sums, y, batch, split, all);
            BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, batch), y, cols,
                    spec + " misaligned by " + misalign);
        }
    }

    /**
     * The backend takes tiles for INT4 x F32 at every width, one token or many: these at 128 bits, the float tables
     * or the lookup tiles where vectors are wider.
     */
    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({"int4@32, 33, 1030, 1", "int4-asym@64, 31, 200, 5", "int4, 40, 1000, 2"})
    void theBackendTakesTilesForInt4WithF32Activations(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 79L + cols);
        EncodedTensor t = PackedCodes.relayout(Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        BpmTensor placed = BackendConformance.placed(t, 0);
        assertInstanceOf(RepackedWeights.class, backend.upload(placed), "the backend takes tiles");
        BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, batch),
                BackendConformance.matmul(backend, placed, x, batch), cols, spec);
    }

    /**
     * INT4 and INT4_ASYM with F32 activations in groups of whole octets, ternary and binary too at 128 bits; not other
     * groups or activations.
     */
    @Test
    void takesInt4WithF32ActivationsInGroupsOfWholeOctets() {
        boolean narrow = NibbleFloatTileMatmul.ROWS == 4;
        assertEquals(narrow, NibbleFloatTileMatmul.supports(spec("ternary", ActivationHint.F32)));
        assertEquals(narrow, NibbleFloatTileMatmul.supports(spec("binary", ActivationHint.F32)));
        assertTrue(NibbleFloatTileMatmul.supports(spec("int4@32", ActivationHint.F32)));
        assertTrue(NibbleFloatTileMatmul.supports(spec("int4-asym", ActivationHint.F32)));
        assertFalse(NibbleFloatTileMatmul.supports(spec("int4@12", ActivationHint.F32)));
        assertFalse(NibbleFloatTileMatmul.supports(spec("int4@32", ActivationHint.INT8)));
        assertFalse(NibbleFloatTileMatmul.supports(spec("int8@32", ActivationHint.F32)));
    }

    private static TensorSpec spec(String quant, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 96}, new float[4 * 96], QuantSpec.parse(quant), activations)
                .spec();
    }
}
