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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link BatchTableMatmul} (TERNARY and BINARY x INT8 for batches, tokens in the lanes) against the
 * scalar oracle. The backend takes it for batches of {@link BatchTableMatmul#MIN_BATCH} tokens or more where there
 * are no lookup tiles (AVX2, NEON), so the kernel is called directly here, at every width the suite runs at (groups
 * of 32 tokens, 16 at 128 bits). Integer sums: results equal the oracle's bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BatchTableMatmulTest {
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        oracle.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({
        // one row, one value; K below, at and past a block (128 ternary values, 256 binary) and not a multiple of one
        "ternary, 1, 1, 20", "ternary, 5, 127, 32", "ternary, 9, 128, 1", "ternary, 9, 129, 33",
        "ternary, 2, 383, 7", "binary, 1, 1, 20", "binary, 5, 64, 32", "binary, 9, 255, 17", "binary, 4, 257, 33",
        // long rows (many blocks; binary rows of whole words that end inside a block), odd rows, a group and a part
        // of one, several whole groups
        "ternary, 3, 6000, 21", "ternary, 33, 700, 40", "ternary, 17, 256, 64", "ternary, 31, 1030, 95",
        "binary, 3, 6000, 21", "binary, 33, 700, 40", "binary, 17, 320, 64", "binary, 31, 1030, 95",
        // ternary in bit planes (the mask and sign planes looked up alike), one scale a row or in groups of whole
        // blocks: TQ2_0's 256 values, longer groups, a last group cut short by K, groups of whole packed blocks
        "ternary-planes, 9, 700, 17", "ternary-planes@256, 9, 1000, 33", "ternary-planes@512, 3, 1300, 20",
        "ternary@128, 5, 700, 21", "ternary@256, 17, 1030, 40", "binary@256, 9, 1000, 17", "binary@512, 3, 2100, 33"})
    void matchesTheOracle(String quant, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 71L + cols);
        EncodedTensor t = weights(rnd, quant, rows, cols);
        assertMatchesTheOracle(t, TestTensors.gaussian(rnd, batch * cols, 1f), batch, quant + " " + rows + "x" + cols);
    }

    /** Fields of 3 (never written; the format reads them as the code 2) give the code 2 here too. */
    @Test
    void fieldsOfThreeReadAsTwo() {
        Random rnd = new Random(5);
        EncodedTensor t = weights(rnd, "ternary", 7, 700);
        byte[] bytes = t.bytes().clone();
        for (int i = 0; i < t.spec().scalesOffset(); i += 3) {
            bytes[i] |= (byte) (3 << (2 * (i % 4)));
        }
        assertMatchesTheOracle(new EncodedTensor(t.spec(), bytes), TestTensors.gaussian(rnd, 24 * 700, 1f), 24,
                "fields of 3");
    }

    /**
     * Every packed ternary field 3 (the code 2, the largest), or every value -1 in planes, against codes of 127 and
     * -127 over long rows: a block's int16 sums reach 32512 in either (128 values x 2 x 127, or 256 x 127), the most
     * they may; any longer run before widening would overflow.
     */
    @ParameterizedTest
    @CsvSource({"ternary", "binary", "ternary-planes"})
    void largestCodesDoNotOverflow(String quant) {
        Random rnd = new Random(9);
        int rows = 3;
        int cols = 1100;
        EncodedTensor t = weights(rnd, quant, rows, cols);
        byte[] bytes = t.bytes().clone();
        Arrays.fill(bytes, 0, (int) t.spec().scalesOffset(), (byte) 0xFF);
        if (t.spec().layout() == TensorSpec.LAYOUT_CANONICAL) {  // every value -1 (binary, or ternary mask and sign)
            long planeBytes = t.spec().wordsPerRow() * 8;
            for (int p = 0; p < rows * t.spec().encoding().planes; p++) {  // bits past K stay 0, as the format asks
                for (int v = cols; v < planeBytes * 8; v++) {
                    bytes[(int) (p * planeBytes + v / 8)] &= (byte) ~(1 << (v % 8));
                }
            }
        }
        float[] x = new float[21 * cols];
        Arrays.fill(x, 1f);
        for (int i = cols; i < 2 * cols; i++) {
            x[i] = -1f;  // a token at -127 everywhere too
        }
        assertMatchesTheOracle(new EncodedTensor(t.spec(), bytes), x, 21, "largest codes");
    }

    /**
     * Ternary and binary with INT8 activations, one scale a row or groups of whole blocks, from MIN_BATCH tokens: half
     * a group, 32 tokens from 256-bit vectors up, 16 at 128 bits.
     */
    @Test
    void takesPackedTernaryAndBinaryBatchesOfHalfAGroup() {
        assertEquals(ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256 ? 32 : 16, BatchTableMatmul.GROUP);
        assertEquals(BatchTableMatmul.GROUP / 2, BatchTableMatmul.MIN_BATCH);
        TensorSpec packed = PackedCodes.relayout(quantize("ternary", ActivationHint.INT8)).spec();
        assertTrue(BatchTableMatmul.takes(packed, BatchTableMatmul.MIN_BATCH));
        assertFalse(BatchTableMatmul.takes(packed, BatchTableMatmul.MIN_BATCH - 1));
        assertTrue(BatchTableMatmul.supports(quantize("ternary", ActivationHint.INT8).spec()), "bit planes");
        assertTrue(BatchTableMatmul.supports(quantize("ternary@256", ActivationHint.INT8).spec()), "TQ2_0's groups");
        assertFalse(BatchTableMatmul.supports(quantize("ternary@128", ActivationHint.INT8).spec()), "half a block");
        assertTrue(BatchTableMatmul.supports(PackedCodes.relayout(quantize("ternary@128", ActivationHint.INT8))
                .spec()), "whole packed blocks");
        assertFalse(BatchTableMatmul.supports(PackedCodes.relayout(quantize("ternary@64", ActivationHint.INT8))
                .spec()), "half a packed block");
        assertFalse(BatchTableMatmul.supports(PackedCodes.relayout(quantize("ternary", ActivationHint.F32))
                .spec()), "float activations");
        assertTrue(BatchTableMatmul.takes(quantize("binary", ActivationHint.INT8).spec(), 32));
        assertFalse(BatchTableMatmul.supports(quantize("binary@64", ActivationHint.INT8).spec()), "binary groups");
        assertTrue(BatchTableMatmul.supports(quantize("binary@256", ActivationHint.INT8).spec()), "whole blocks");
        assertFalse(BatchTableMatmul.supports(quantize("binary", ActivationHint.BINARY).spec()), "XNOR");
        assertFalse(BatchTableMatmul.supports(PackedCodes.relayout(quantize("int4@32", ActivationHint.INT8)).spec()));
    }

    private static EncodedTensor quantize(String quant, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 1024}, new float[4 * 1024], QuantSpec.parse(quant), activations);
    }

    /** Ternary in packed codes (or in its planes, spelled ternary-planes), binary in its plane. */
    private static EncodedTensor weights(Random rnd, String quant, int rows, int cols) {
        boolean planes = quant.startsWith("ternary-planes");
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(quant.replace("-planes", "")), ActivationHint.INT8);
        return quant.startsWith("ternary") && !planes ? PackedCodes.relayout(t) : t;
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
        assertTrue(BatchTableMatmul.supports(s), what);
        short[] codes = new short[BatchTableMatmul.transposedLength(s, batch)];
        Arrays.fill(codes, (short) 99);  // transpose must clear what it does not write
        int[] sums = new int[BatchTableMatmul.sumsLength(s, batch)];
        Arrays.fill(sums, 99);
        BatchTableMatmul.transpose(s, q, batch, codes, sums);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            float[] y = new float[batch * rows];
            int split = rows / 2;
            BatchTableMatmul.rows(s, placed.data(), codes, sums, scales, y, batch, 0, split);
            BatchTableMatmul.rows(s, placed.data(), codes, sums, scales, y, batch, split, rows);
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch), y,
                    what + " batch " + batch + " misaligned by " + misalign);
        }
    }
}
