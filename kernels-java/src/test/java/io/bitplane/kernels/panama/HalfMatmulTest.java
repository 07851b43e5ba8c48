package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.scalar.ScalarMatmul;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link HalfMatmul} (F16 and BF16 weights x F32 activations) against the scalar oracle: float sums in another
 * order, so within rounding (the conformance suite's tolerance); each half's value exactly, every one of the 65536
 * bit patterns; rows holding infinities or NaNs as the oracle sums them.
 */
class HalfMatmulTest {

    private static float[] product(BpmTensor t, float[] x, int batch, boolean fast) {
        TensorSpec spec = t.spec();
        float[] y = new float[batch * (int) spec.rows()];
        if (fast) {
            HalfMatmul.rows(spec, t.data(), x, y, batch, 0, (int) spec.rows());
        } else {
            ScalarMatmul.matmul(spec, t.data(), x, y, batch, 0, (int) spec.rows());
        }
        return y;
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({
        // one row; K below one vector, at one, past one, below and past four (the unrolled loop), long rows
        "f16, 1, 1, 1", "f16, 1, 7, 1", "f16, 3, 8, 2", "f16, 5, 17, 1", "f16, 9, 64, 3", "f16, 7, 65, 1",
        "f16, 33, 100, 2", "f16, 2, 4100, 1", "f16, 300, 512, 9",
        "bf16, 1, 1, 1", "bf16, 1, 7, 2", "bf16, 3, 8, 1", "bf16, 5, 17, 3", "bf16, 9, 64, 1", "bf16, 7, 65, 2",
        "bf16, 33, 100, 1", "bf16, 2, 4100, 2", "bf16, 300, 512, 5"})
    void matchesTheOracleWithinRounding(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 131L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        assertTrue(HalfMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 1, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            BackendConformance.assertWithinRounding(product(placed, x, batch, false), product(placed, x, batch, true),
                    cols, spec + " misaligned by " + misalign);
        }
    }

    /**
     * All 65536 halves, 16 to a row, against one-hot tokens: token t reads value t of each row alone (the others
     * times 0), so a finite half must come out as exactly the oracle's float, subnormals and both zeros included;
     * rows with an infinity or a NaN give the oracle's infinities and NaNs.
     */
    @ParameterizedTest
    @ValueSource(strings = {"F16", "BF16"})
    void everyBitPatternConvertsExactly(String encoding) {
        int cols = 16;
        int rows = 65536 / cols;
        short[] bits = new short[65536];
        for (int i = 0; i < bits.length; i++) {
            bits[i] = (short) i;
        }
        TensorSpec spec = TensorSpec.of("w", Encoding.valueOf(encoding), 0, rows, cols);
        BpmTensor t = BackendConformance.placed(EncodedTensor.ofHalfBits(spec, bits), 0);
        float[] x = new float[cols * cols];
        for (int token = 0; token < cols; token++) {
            x[token * cols + token] = 1f;
        }
        float[] expected = product(t, x, cols, false);
        float[] actual = product(t, x, cols, true);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 0f, encoding + " token " + i / rows + " row " + i % rows);
        }
        // One token at a time takes the other path (the halves converted as they are read)
        for (int token = 0; token < cols; token++) {
            float[] alone = product(t, java.util.Arrays.copyOfRange(x, token * cols, (token + 1) * cols), 1, true);
            for (int r = 0; r < rows; r++) {
                assertEquals(expected[token * rows + r], alone[r], 0f,
                        encoding + " alone, token " + token + " row " + r);
            }
        }
    }

    /** An infinity or a NaN in the unrolled loop, the one-vector loop or the tail of a long row. */
    @ParameterizedTest
    @ValueSource(ints = {5, 6, 900, 901, 995, 996})
    void rowsWithInfinitiesOrNansSumAsTheOracle(int at) {
        Random rnd = new Random(at);
        int rows = 4;
        int cols = 1000;
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("f16"), ActivationHint.F32);
        byte[] bytes = t.bytes().clone();
        putHalf(bytes, 0 * cols + at, (short) 0x7C00);   // +inf
        putHalf(bytes, 1 * cols + at, (short) 0xFC00);   // -inf
        putHalf(bytes, 2 * cols + at, (short) 0x7E01);   // NaN
        BpmTensor placed = BackendConformance.placed(new EncodedTensor(t.spec(), bytes), 7);
        int batch = 1 + at % 2;  // one token (converted as read) or two (rows converted once)
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        float[] expected = product(placed, x, batch, false);
        float[] actual = product(placed, x, batch, true);
        for (int i = 0; i < expected.length; i++) {
            int row = i % rows;
            if (row < 3) {
                assertEquals(expected[i], actual[i], 0f, "row " + row + " token " + i / rows);
                assertTrue(!Float.isFinite(actual[i]), "row " + row + " holds an infinity or a NaN");
            } else {
                BackendConformance.assertWithinRounding(new float[] {expected[i]}, new float[] {actual[i]}, cols,
                        "finite row");
            }
        }
    }

    /**
     * Every token's result in a batch is the one it gets alone, bit for bit, in rows with and without an infinity.
     */
    @ParameterizedTest
    @CsvSource({"f16, 3", "f16, 4100", "bf16, 3", "bf16, 4100", "f16, 129"})
    void aBatchGivesEachTokenItsResultAlone(String spec, int cols) {
        Random rnd = new Random(cols);
        int rows = 5;
        int batch = 6;
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        byte[] bytes = t.bytes().clone();
        if (spec.equals("f16")) {
            putHalf(bytes, 2 * cols + cols / 2, (short) 0xFC00);   // -inf in row 2
        }
        BpmTensor placed = BackendConformance.placed(new EncodedTensor(t.spec(), bytes), 5);
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        float[] together = product(placed, x, batch, true);
        for (int b = 0; b < batch; b++) {
            float[] alone = product(placed, java.util.Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1, true);
            assertArrayEquals(alone, java.util.Arrays.copyOfRange(together, b * rows, (b + 1) * rows), "token " + b);
        }
        BackendConformance.assertWithinRounding(product(placed, x, batch, false), together, cols, spec);
    }

    private static void putHalf(byte[] bytes, int index, short h) {
        bytes[2 * index] = (byte) h;
        bytes[2 * index + 1] = (byte) (h >> 8);
    }

    @Test
    void takesHalvesOnlyWithAtLeastFourLanes() {
        TensorSpec f16 = TensorSpec.of("w", Encoding.F16, 0, 4, 64);
        TensorSpec f32 = TensorSpec.of("w", Encoding.F32, 0, 4, 64);
        assertEquals(HalfMatmul.F.length() >= 4, HalfMatmul.supports(f16));
        assertTrue(!HalfMatmul.supports(f32));
    }
}
