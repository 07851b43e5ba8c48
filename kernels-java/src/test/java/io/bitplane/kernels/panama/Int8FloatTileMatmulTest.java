package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
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

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Int8FloatTileMatmul} (INT8 x F32 on tiles of 8 rows, the kernel of machines without vpermw) against the
 * scalar oracle, on a backend without the lookup-table tiles whatever this machine would choose. Float sums in
 * another order, so results must agree within rounding (the conformance suite's tolerance).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class Int8FloatTileMatmulTest {
    private final Backend floatTiles = new PanamaBackend(2, false);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        floatTiles.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({
        // one row, a partial tile, a whole tile (8), one row past it, an odd number of tiles; K below, at and past a
        // quad (4), and not a multiple of one
        "int8, 1, 1, 1", "int8, 1, 3, 2", "int8, 7, 4, 1", "int8, 8, 5, 3", "int8, 9, 31, 1", "int8, 25, 64, 2",
        "int8, 17, 66, 1",
        // long rows, split across threads, batches
        "int8, 40, 2200, 1", "int8, 3, 4501, 2", "int8, 700, 512, 1", "int8, 300, 2048, 9",
        // groups of one quad, of several with a short last group (cut by K inside a quad), and one per row
        "int8@4, 17, 100, 1", "int8@12, 33, 1030, 2", "int8@32, 9, 203, 1", "int8@128, 31, 1000, 3"})
    void matchesTheOracle(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 71L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        assertTrue(Int8FloatTileMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertInstanceOf(RepackedWeights.class, floatTiles.upload(placed), "the backend takes the INT8 tiles");
            BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(floatTiles, placed, x, batch), cols, spec + " misaligned by " + misalign);
        }
    }

    /** INT8 with F32 activations in groups of whole quads; not other groups, encodings or activations. */
    @Test
    void takesInt8WithF32ActivationsInGroupsOfWholeQuads() {
        assertTrue(Int8FloatTileMatmul.supports(spec("int8@32", ActivationHint.F32)));
        assertTrue(Int8FloatTileMatmul.supports(spec("int8", ActivationHint.F32)));
        assertFalse(Int8FloatTileMatmul.supports(spec("int8@6", ActivationHint.F32)));
        assertFalse(Int8FloatTileMatmul.supports(spec("int8@32", ActivationHint.INT8)));
        assertFalse(Int8FloatTileMatmul.supports(spec("int4@32", ActivationHint.F32)));
    }

    private static io.bitplane.format.TensorSpec spec(String quant, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 96}, new float[4 * 96], QuantSpec.parse(quant), activations)
                .spec();
    }
}
