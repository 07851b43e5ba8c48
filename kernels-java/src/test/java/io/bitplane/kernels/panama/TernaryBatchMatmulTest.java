package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.scalar.ScalarBackend;
import jdk.incubator.vector.ShortVector;
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

/**
 * {@link TernaryBatchMatmul} (packed TERNARY x INT8 for batches, tokens in the lanes) against the scalar oracle. The
 * backend takes it for batches of {@link TernaryBatchMatmul#MIN_BATCH} tokens or more where there are no lookup
 * tiles (AVX2), so the kernel is called directly here, at every width the suite runs at. Integer sums: results
 * equal the oracle's bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TernaryBatchMatmulTest {
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        oracle.close();
    }

    @ParameterizedTest(name = "{0}x{1} batch {2}")
    @CsvSource({
        // one row, one value; K below, at and past a block (128 values) and not a multiple of one
        "1, 1, 20", "5, 127, 32", "9, 128, 1", "9, 129, 33", "2, 383, 7",
        // long rows (many blocks), odd rows, a group and a part, several whole groups
        "3, 6000, 21", "33, 700, 40", "17, 256, 64", "31, 1030, 95"})
    void matchesTheOracle(int rows, int cols, int batch) {
        Random rnd = new Random(rows * 71L + cols);
        EncodedTensor t = packedTernary(rnd, rows, cols);
        assertMatchesTheOracle(t, TestTensors.gaussian(rnd, batch * cols, 1f), batch, rows + "x" + cols);
    }

    /** Fields of 3 (never written; the format reads them as the code 2) give the code 2 here too. */
    @Test
    void fieldsOfThreeReadAsTwo() {
        Random rnd = new Random(5);
        EncodedTensor t = packedTernary(rnd, 7, 700);
        byte[] bytes = t.bytes().clone();
        for (int i = 0; i < t.spec().scalesOffset(); i += 3) {
            bytes[i] |= (byte) (3 << (2 * (i % 4)));
        }
        assertMatchesTheOracle(new EncodedTensor(t.spec(), bytes), TestTensors.gaussian(rnd, 24 * 700, 1f), 24,
                "fields of 3");
    }

    /**
     * Every field 3 (the code 2, the largest) against codes of 127 over long rows: a block's int16 sums reach 32512,
     * the most they may; any longer run before widening would overflow.
     */
    @Test
    void largestCodesDoNotOverflow() {
        Random rnd = new Random(9);
        int rows = 3;
        int cols = 1100;
        EncodedTensor t = packedTernary(rnd, rows, cols);
        byte[] bytes = t.bytes().clone();
        Arrays.fill(bytes, 0, (int) t.spec().scalesOffset(), (byte) 0xFF);
        float[] x = new float[21 * cols];
        Arrays.fill(x, 1f);
        for (int i = cols; i < 2 * cols; i++) {
            x[i] = -1f;  // a token at -127 everywhere too
        }
        assertMatchesTheOracle(new EncodedTensor(t.spec(), bytes), x, 21, "largest codes");
    }

    /** Packed ternary with INT8 activations and one scale a row, from 256-bit vectors up, from MIN_BATCH tokens. */
    @Test
    void takesPackedTernaryBatchesFromVectorsOf256Bits() {
        boolean wide = ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256;
        TensorSpec packed = PackedCodes.relayout(quantize("ternary", ActivationHint.INT8)).spec();
        assertEquals(wide, TernaryBatchMatmul.takes(packed, TernaryBatchMatmul.MIN_BATCH));
        assertFalse(TernaryBatchMatmul.takes(packed, TernaryBatchMatmul.MIN_BATCH - 1));
        assertFalse(TernaryBatchMatmul.supports(quantize("ternary", ActivationHint.INT8).spec()), "bit planes");
        assertFalse(TernaryBatchMatmul.supports(PackedCodes.relayout(quantize("ternary@128", ActivationHint.INT8))
                .spec()), "groups");
        assertFalse(TernaryBatchMatmul.supports(PackedCodes.relayout(quantize("ternary", ActivationHint.F32))
                .spec()), "float activations");
    }

    private static EncodedTensor quantize(String quant, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 256}, new float[4 * 256], QuantSpec.parse(quant), activations);
    }

    private static EncodedTensor packedTernary(Random rnd, int rows, int cols) {
        return PackedCodes.relayout(Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("ternary"), ActivationHint.INT8));
    }

    /** The kernel over two row ranges (the first ending inside the rows where there are two or more). */
    private void assertMatchesTheOracle(EncodedTensor t, float[] x, int batch, String what) {
        TensorSpec s = t.spec();
        int rows = (int) s.rows();
        int k = (int) s.cols();
        short[] q = new short[batch * k];
        float[] scales = new float[batch];
        for (int b = 0; b < batch; b++) {
            scales[b] = VectorQuantizer.quantizeInt8(x, b * k, k, q, b * k);
        }
        short[] codes = new short[TernaryBatchMatmul.transposedLength(s, batch)];
        Arrays.fill(codes, (short) 99);  // transpose must clear what it does not write
        TernaryBatchMatmul.transpose(s, q, batch, codes);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            float[] y = new float[batch * rows];
            int split = rows / 2;
            TernaryBatchMatmul.rows(s, placed.data(), codes, scales, y, batch, 0, split);
            TernaryBatchMatmul.rows(s, placed.data(), codes, scales, y, batch, split, rows);
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch), y,
                    what + " batch " + batch + " misaligned by " + misalign);
        }
    }
}
