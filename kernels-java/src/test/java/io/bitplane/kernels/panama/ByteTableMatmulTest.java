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

import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link ByteTableMatmul} (BINARY x INT8 by byte tables, the kernel of machines without vpermw) against the scalar
 * oracle, on a backend without the lookup-table tiles whatever this machine would choose. Integer sums, so results
 * must be equal bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ByteTableMatmulTest {
    private final Backend byteTables = new PanamaBackend(2, false);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        byteTables.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({
        // one row, a partial tile, a whole tile, one row past it; K below, at and past a byte (8) and a step (16)
        "binary, 1, 1, 1", "binary, 1, 3, 2", "binary, 15, 16, 1", "binary, 16, 17, 3", "binary, 17, 64, 1",
        "binary, 33, 130, 2", "binary, 5, 100, 1",
        // rows longer than one int16 run (136 steps, 2176 values), split across threads, batches
        "binary, 40, 2200, 1", "binary, 3, 4500, 2", "binary, 700, 512, 1", "binary, 300, 2048, 9",
        // groups of one step, of steps with a short last group, and of many runs
        "binary@16, 17, 100, 1", "binary@32, 33, 1030, 2", "binary@48, 9, 200, 1", "binary@256, 31, 1000, 3",
        "binary@4096, 5, 9000, 1"})
    void matchesTheOracle(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 59L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
        assertTrue(ByteTableMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertInstanceOf(RepackedWeights.class, byteTables.upload(placed), "the backend takes the byte tables");
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(byteTables, placed, x, batch), spec + " misaligned by " + misalign);
        }
    }

    /**
     * Every weight -1 (bit 1 everywhere) or +1 and every code 127 or -127 over rows of 16,384 values: L (q & 15 = 15,
     * 240 per step) and H (q >> 4 = -8, -128 per step) fill their int16 sums fastest, and the runs must end in time
     * (a run twice as long would wrap).
     */
    @ParameterizedTest(name = "weights {0}")
    @CsvSource({"0.1", "-0.1"})
    void largestSumsDoNotOverflow(float weight) {
        int rows = 17;
        int cols = 16384;
        float[] w = new float[rows * cols];
        Arrays.fill(w, weight);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, w, QuantSpec.parse("binary"),
                ActivationHint.INT8);
        float[] x = new float[2 * cols];
        Arrays.fill(x, 1f);
        Arrays.fill(x, cols, 2 * cols, -1f);
        BpmTensor placed = BackendConformance.placed(t, 0);
        float[] expected = BackendConformance.matmul(oracle, placed, x, 2);
        assertEquals(weight > 0 ? 1 : -1, Math.signum(expected[0]), "the oracle's sum is +-16384 x 127 x scales");
        assertArrayEquals(expected, BackendConformance.matmul(byteTables, placed, x, 2));
    }

    /** Bits past K in a row's last word are padding that a writer may leave set: they must count for nothing. */
    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"3, 1", "17, 100", "5, 250"})
    void paddingBitsCountForNothing(int rows, int cols) {
        Random rnd = new Random(cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("binary"), ActivationHint.INT8);
        BpmTensor placed = BackendConformance.placed(BackendConformance.withPaddingBitsSet(t), 0);
        float[] x = TestTensors.gaussian(rnd, cols, 1f);
        assertArrayEquals(BackendConformance.matmul(oracle, placed, x, 1),
                BackendConformance.matmul(byteTables, placed, x, 1));
    }

    /** Binary weights with INT8 activations in groups of whole steps; not other groups, encodings or activations. */
    @Test
    void takesBinaryWithInt8ActivationsInGroupsOfWholeSteps() {
        float[] w = new float[4 * 64];
        assertTrue(ByteTableMatmul.supports(spec("binary", w, ActivationHint.INT8)));
        assertTrue(ByteTableMatmul.supports(spec("binary@32", w, ActivationHint.INT8)));
        assertFalse(ByteTableMatmul.supports(spec("binary@8", w, ActivationHint.INT8)));
        assertFalse(ByteTableMatmul.supports(spec("binary", w, ActivationHint.F32)));
        assertFalse(ByteTableMatmul.supports(spec("ternary", w, ActivationHint.INT8)));
    }

    private static io.bitplane.format.TensorSpec spec(String quant, float[] w, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 64}, w, QuantSpec.parse(quant), activations).spec();
    }
}
