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
 * {@link TripleTableMatmul} (BINARY, TERNARY, INT4 and INT4_ASYM x F32 by 8-entry float tables, the kernel of
 * machines without vpermw) against the scalar oracle, on a backend without the lookup-table tiles whatever this
 * machine would choose. Float sums in another order, so results must agree within rounding (the conformance
 * suite's tolerance).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TripleTableMatmulTest {
    private final Backend tripleTables = new PanamaBackend(2, false);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        tripleTables.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3} packed {4}")
    @CsvSource({
        // one row, a partial tile, a whole tile (8), one row past it, an odd number of tiles; K below, at and past a
        // table (3), the last table of a word (values 30, 31), a word (32) and the file's 64-bit word
        "binary, 1, 1, 1, false", "binary, 1, 3, 2, false", "binary, 7, 31, 1, false", "binary, 8, 32, 3, false",
        "binary, 9, 33, 1, false", "binary, 25, 64, 2, false", "binary, 17, 65, 1, false", "binary, 5, 100, 1, false",
        // long rows, split across threads, batches
        "binary, 40, 2200, 1, false", "binary, 3, 4500, 2, false", "binary, 700, 512, 1, false",
        "binary, 300, 2048, 9, false",
        // groups of one word, of words with a short last group, and of many
        "binary@32, 17, 100, 1, false", "binary@64, 33, 1030, 2, false", "binary@96, 9, 200, 1, false",
        "binary@256, 31, 1000, 3, false", "binary@4096, 5, 9000, 1, false",
        // ternary, its +1 and -1 words side by side, from either layout
        "ternary, 1, 1, 1, true", "ternary, 7, 31, 2, false", "ternary, 9, 33, 1, true", "ternary, 17, 65, 3, false",
        "ternary, 40, 2200, 1, true", "ternary, 300, 2048, 9, false", "ternary@32, 17, 100, 1, true",
        "ternary@64, 33, 1030, 2, false", "ternary@256, 31, 1000, 3, true",
        // INT4, four words of bits of u = code + 8, from either layout, one scale a row and in groups
        "int4, 1, 1, 1, false", "int4, 7, 31, 2, true", "int4, 9, 33, 1, false", "int4, 17, 65, 3, true",
        "int4@32, 40, 2200, 1, true", "int4@32, 300, 2048, 9, false", "int4@64, 33, 1030, 2, true",
        "int4@128, 31, 1000, 3, false",
        // INT4_ASYM: u = code, and each group's m_g X_g
        "int4-asym@32, 17, 65, 2, true", "int4-asym@64, 33, 1030, 1, false", "int4-asym, 9, 700, 3, true"})
    void matchesTheOracle(String spec, int rows, int cols, int batch, boolean packed) {
        Random rnd = new Random(rows * 67L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        t = packed ? io.bitplane.format.PackedCodes.relayout(t) : t;
        assertTrue(TripleTableMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertInstanceOf(RepackedWeights.class, tripleTables.upload(placed), "the backend takes the float tables");
            BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(tripleTables, placed, x, batch), cols,
                    spec + " misaligned by " + misalign);
        }
    }

    /** Bits past K in a row's last word are padding that a writer may leave set: they must count for nothing. */
    @ParameterizedTest(name = "{0}x{1}")
    @CsvSource({"3, 1", "17, 100", "5, 250", "9, 31"})
    void paddingBitsCountForNothing(int rows, int cols) {
        Random rnd = new Random(cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("binary"), ActivationHint.F32);
        BpmTensor placed = BackendConformance.placed(BackendConformance.withPaddingBitsSet(t), 0);
        float[] x = TestTensors.gaussian(rnd, cols, 1f);
        BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, 1),
                BackendConformance.matmul(tripleTables, placed, x, 1), cols, "padding bits set");
    }

    /**
     * Binary, ternary, INT4 and INT4_ASYM weights with F32 activations in groups of whole words; not other groups,
     * encodings or activations.
     */
    @Test
    void takesBinaryTernaryAndInt4WithF32ActivationsInGroupsOfWholeWords() {
        float[] w = new float[4 * 64];
        assertTrue(TripleTableMatmul.supports(spec("binary", w, ActivationHint.F32)));
        assertTrue(TripleTableMatmul.supports(spec("binary@32", w, ActivationHint.F32)));
        assertTrue(TripleTableMatmul.supports(spec("ternary", w, ActivationHint.F32)));
        assertTrue(TripleTableMatmul.supports(spec("ternary@64", w, ActivationHint.F32)));
        assertFalse(TripleTableMatmul.supports(spec("binary@16", w, ActivationHint.F32)));
        assertFalse(TripleTableMatmul.supports(spec("binary", w, ActivationHint.INT8)));
        assertFalse(TripleTableMatmul.supports(spec("ternary", w, ActivationHint.INT8)));
        assertTrue(TripleTableMatmul.supports(spec("int4@32", w, ActivationHint.F32)));
        assertTrue(TripleTableMatmul.supports(spec("int4-asym@32", w, ActivationHint.F32)));
        assertFalse(TripleTableMatmul.supports(spec("int4@16", w, ActivationHint.F32)));
    }

    /** A packed ternary tensor with fields of 3 (code 2) gets no tiles: the backend's other kernels read it. */
    @Test
    void packedTernaryWithCodeTwoKeepsTheFile() {
        Random rnd = new Random(5);
        EncodedTensor t = io.bitplane.format.PackedCodes.relayout(Quantizer.quantize("w", new long[] {9, 100},
                TestTensors.gaussian(rnd, 900, 0.1f), QuantSpec.parse("ternary"), ActivationHint.F32));
        byte[] bytes = t.bytes().clone();
        bytes[7] |= 3;  // one field of 3
        BpmTensor placed = BackendConformance.placed(new EncodedTensor(t.spec(), bytes), 0);
        assertFalse(tripleTables.upload(placed) instanceof RepackedWeights, "no tiles for a code of 2");
    }

    private static io.bitplane.format.TensorSpec spec(String quant, float[] w, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 64}, w, QuantSpec.parse(quant), activations).spec();
    }
}
