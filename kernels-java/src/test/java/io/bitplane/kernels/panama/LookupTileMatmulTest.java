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
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The lookup-table tile kernels (ternary rows of one scale in {@link Base3TileMatmul}, other ternary and binary in
 * {@link SignTileMatmul}, INT4 with F32 activations in {@link Int4TileMatmul}) against the scalar oracle, forced on
 * (INT4 with INT8 activations: NibbleTileMatmulTest). They need 512-bit vectors, so the build's run at AVX2's width
 * leaves this class out (kernels-java/pom.xml; LookupTablesTest runs at both widths). Integer sums, so results must be
 * equal bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LookupTileMatmulTest {
    private final Backend tiles = new PanamaBackend(2, true);
    private final Backend oracle = new ScalarBackend();

    @AfterAll
    void close() {
        tiles.close();
    }

    /**
     * Ternary rows of one scale, in base-3 tiles ({@link Base3TileMatmul}): one row, a partial tile, a whole tile and
     * one row past it; K below, at and past a table (3 values) and a chunk (9), with an odd number of chunks (rounded
     * up to even, so that the second half starts a chunk early); three to five tiles (four a pass); rows of many
     * 14-step runs; halves packed end to end (short and long rows) and halves on pages (1024 to 4600 values, whose
     * halves are padded to whole pages); ranges split across threads; batches.
     */
    @ParameterizedTest(name = "{0}x{1} batch {2} packed {3}")
    @CsvSource({
        "1, 1, 1, false", "1, 3, 1, true", "2, 9, 2, false", "15, 10, 1, true", "16, 18, 1, false",
        "17, 19, 3, true", "31, 64, 1, false", "32, 65, 2, true", "33, 100, 1, false", "5, 255, 2, true",
        "70, 300, 2, true", "100, 64, 3, false", "130, 600, 1, false", "48, 1030, 1, false", "40, 1024, 4, true",
        "700, 512, 1, true", "300, 2048, 2, false", "1000, 640, 1, false", "1, 4096, 1, false", "1, 4097, 2, true",
        "31, 4104, 1, false", "32, 4105, 3, true", "160, 5000, 2, true", "300, 4099, 1, false"})
    void matchesTheOracle(int rows, int cols, int batch, boolean packed) {
        Random rnd = new Random(rows * 41L + cols);
        EncodedTensor t = gaussian("ternary", rows, cols, packed, rnd);
        assertTrue(Base3TileMatmul.supports(t.spec()));
        assertFalse(SignTileMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(tiles, placed, x, batch), "misaligned by " + misalign);
        }
    }

    /**
     * Halves under 16 KB start on pages where that adds at most a quarter: 1024 values (3,648 bytes a half) and 4096
     * (14,592), not 600 (2,176) nor 14336 (51,008).
     */
    @Test
    void shortHalvesStartOnPagesWhereThatCostsLittle() {
        Random rnd = new Random(8);
        assertEquals(4096, Base3TileMatmul.halfStride(gaussian("ternary", 1, 1024, false, rnd).spec()));
        assertEquals(4 * 4096, Base3TileMatmul.halfStride(gaussian("ternary", 1, 4096, false, rnd).spec()));
        assertEquals(34 * 64, Base3TileMatmul.halfStride(gaussian("ternary", 1, 600, false, rnd).spec()));
        assertEquals(797 * 64, Base3TileMatmul.halfStride(gaussian("ternary", 1, 14336, false, rnd).spec()));
    }

    /**
     * A packed field of 3 (the code 2, never written) in the last row of a ternary tensor gets no tiles, and the
     * kernels that read the file's codes give the oracle's results.
     */
    @Test
    void packedTernaryWithCodeTwoKeepsTheFile() {
        Random rnd = new Random(9);
        EncodedTensor t = gaussian("ternary", 40, 1000, true, rnd);
        byte[] bytes = t.bytes().clone();
        bytes[(int) (39 * PackedCodes.rowBytes(t.spec()) + 200)] |= 3;
        BpmTensor placed = BackendConformance.placed(new EncodedTensor(t.spec(), bytes), 0);
        assertFalse(tiles.upload(placed) instanceof RepackedWeights, "a code of 2");
        float[] x = TestTensors.gaussian(rnd, 1000, 1f);
        assertArrayEquals(BackendConformance.matmul(oracle, placed, x, 1), BackendConformance.matmul(tiles, placed,
                x, 1));
    }

    /**
     * Binary rows (codes +-1, one plane of signs) and ternary rows in groups, four tiles at a time: one to three
     * tiles, four and one, a partial last tile, ranges split across threads, and groups; binary rows of a multiple of
     * 2048 values go in halves (SignTileMatmul#signSumsInHalves).
     */
    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({"binary, 1, 1, 1", "binary, 3, 130, 2", "binary, 33, 17, 1", "binary, 65, 1030, 3",
        "binary, 40, 4100, 1", "binary, 500, 640, 2", "binary, 150, 300, 1", "binary, 100, 64, 3",
        "binary, 1, 2048, 1", "binary, 33, 2048, 2", "binary, 130, 4096, 1", "binary, 70, 6144, 3",
        "binary@64, 150, 300, 2", "binary@128, 230, 1300, 1", "ternary@64, 150, 300, 2", "ternary@32, 100, 96, 1",
        "ternary@128, 230, 1300, 1", "ternary@256, 500, 1024, 3"})
    void binaryAndGroupedTernaryMatchTheOracle(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 47L + cols);
        EncodedTensor t = gaussian(spec, rows, cols, false, rnd);
        assertTrue(SignTileMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 7}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(tiles, placed, x, batch), "misaligned by " + misalign);
        }
    }

    /**
     * F32 activations over float tables, ternary, binary and INT4 (where vectors have 16 int lanes; elsewhere the
     * backend's other kernels): sums in another order than the oracle's, so equal within the conformance tolerance.
     * Ternary and binary go four tiles at a time, INT4 two: one to four tiles, four and one, a partial last tile,
     * ranges split across threads.
     */
    @ParameterizedTest(name = "{0} {1}x{2} batch {3} packed {4}")
    @CsvSource({"ternary, 1, 1, 1, false", "ternary, 17, 64, 3, true", "ternary, 33, 1030, 2, false",
        "ternary, 3, 4100, 1, true", "ternary, 100, 64, 2, true", "ternary, 150, 300, 1, false",
        "ternary, 500, 640, 1, true", "binary, 1, 3, 1, false", "binary, 65, 1030, 3, false",
        "binary, 40, 4100, 1, false", "binary, 100, 64, 3, false", "binary, 150, 300, 2, false",
        "binary, 500, 640, 1, false", "int4@32, 1, 32, 1, false", "int4@32, 17, 100, 3, true",
        "int4@16, 33, 1030, 2, false", "int4, 9, 300, 2, false", "int4@128, 40, 1000, 9, true",
        "int4-asym@32, 15, 640, 2, true", "int4-asym@64, 3, 4100, 1, false", "int4-asym, 7, 90, 1, true",
        "int4@32, 70, 300, 2, true", "int4-asym@32, 100, 64, 1, false", "int4@64, 500, 640, 1, false"})
    void floatActivationsMatchTheOracle(String spec, int rows, int cols, int batch, boolean packed) {
        Random rnd = new Random(rows * 53L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.F32);
        t = packed ? PackedCodes.relayout(t) : t;
        assertEquals(SignTileMatmul.FLOAT_TABLES, spec.startsWith("int4") ? Int4TileMatmul.supports(t.spec())
                : SignTileMatmul.supports(t.spec()));
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 7}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            BackendConformance.assertWithinRounding(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(tiles, placed, x, batch), cols, spec + " misaligned by " + misalign);
        }
    }

    /** Gaussian weights quantized by {@code spec} for INT8 activations, in the packed layout or the canonical one. */
    private static EncodedTensor gaussian(String spec, int rows, int cols, boolean packed, Random rnd) {
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.INT8);
        return packed ? PackedCodes.relayout(t) : t;
    }

    /**
     * Every ternary or binary weight +1 (or -1) and every activation code 127 over rows of 16,384 values (ternary in
     * base-3 tiles, binary in sign tiles): the 16-bit runs must end before a lane overflows (a run twice as long
     * would wrap).
     */
    @ParameterizedTest(name = "{1} weights {0}")
    @CsvSource({"0.1, ternary", "-0.1, ternary", "0.1, binary", "-0.1, binary"})
    void largestSumsDoNotOverflow(float weight, String spec) {
        int rows = 17;
        int cols = 16384;
        float[] w = new float[rows * cols];
        Arrays.fill(w, weight);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, w, QuantSpec.parse(spec),
                ActivationHint.INT8);
        float[] x = new float[2 * cols];
        Arrays.fill(x, 1f);
        Arrays.fill(x, cols, 2 * cols, -1f);
        BpmTensor placed = BackendConformance.placed(spec.equals("ternary") ? PackedCodes.relayout(t) : t, 0);
        float[] expected = BackendConformance.matmul(oracle, placed, x, 2);
        assertEquals(weight > 0 ? 1 : -1, Math.signum(expected[0]), "the oracle's sum is +-16384 x 127 x scales");
        assertArrayEquals(expected, BackendConformance.matmul(tiles, placed, x, 2));
    }

    /**
     * Ternary tensors are repacked with INT8 activations (one scale per row into base-3 tiles, groups of whole
     * 16-value chunks into sign tiles), or with F32 ones of one scale per row where float tables fit a vector (512
     * bits); the others keep their kernels.
     */
    @Test
    void takesTernaryWithInt8OrWideF32ActivationsInGroupsItCanSplit() {
        Random rnd = new Random(3);
        float[] w = TestTensors.gaussian(rnd, 8 * 256, 0.1f);
        long[] shape = {8, 256};
        assertTrue(Base3TileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary"), ActivationHint.INT8).spec()));
        for (String other : new String[] {"ternary@64", "binary", "int4@32"}) {
            assertFalse(Base3TileMatmul.supports(
                    Quantizer.quantize("w", shape, w, QuantSpec.parse(other), ActivationHint.INT8).spec()), other);
        }
        assertFalse(Base3TileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary"), ActivationHint.F32).spec()));
        assertEquals(SignTileMatmul.FLOAT_TABLES, SignTileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary"), ActivationHint.F32).spec()));
        assertTrue(SignTileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary@64"), ActivationHint.INT8).spec()));
        assertFalse(SignTileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary@24"), ActivationHint.INT8).spec()));
        assertFalse(SignTileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("ternary@64"), ActivationHint.F32).spec()));
        assertFalse(SignTileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("int4@32"), ActivationHint.INT8).spec()));
        assertEquals(SignTileMatmul.FLOAT_TABLES, Int4TileMatmul.supports(
                Quantizer.quantize("w", shape, w, QuantSpec.parse("int4@32"), ActivationHint.F32).spec()));
    }
}
