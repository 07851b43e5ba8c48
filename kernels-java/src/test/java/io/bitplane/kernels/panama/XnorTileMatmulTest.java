package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
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
import jdk.incubator.vector.IntVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link XnorTileMatmul} (BINARY x binary activations, words of a tile's rows side by side) against the
 * scalar oracle: integer popcounts and the oracle's float steps, so results must be equal bit for bit.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class XnorTileMatmulTest {
    private final Backend java = new PanamaBackend(2, false);
    private final Backend oracle = new ScalarBackend();
    /** Whether this run's vectors have the 256 bits or more the kernel needs. */
    private static final boolean WIDE = IntVector.SPECIES_PREFERRED.vectorBitSize() >= 256;

    @AfterAll
    void close() {
        java.close();
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3}")
    @CsvSource({
        // one row, a partial tile, a whole tile (8 or 16 rows), one row past it, several tiles split over threads
        "binary@32, 1, 64, 1", "binary@32, 3, 100, 2", "binary@64, 8, 128, 1", "binary@64, 16, 200, 1",
        "binary@64, 17, 1030, 3", "binary@128, 33, 1000, 1", "binary@256, 300, 2048, 2",
        // K ending inside a half-word and inside a word, a short last group, a last group of one half-word
        "binary@32, 5, 63, 1", "binary@64, 9, 97, 2", "binary@96, 7, 200, 1", "binary@160, 4, 330, 1",
        "binary@64, 5, 4100, 1",
        // groups that start or end inside a half-word: shorter than one (two to four a half), across two, longer
        "binary@16, 9, 100, 1", "binary@8, 3, 64, 2", "binary@48, 17, 200, 3", "binary@40, 5, 130, 1",
        "binary@96, 33, 1000, 1", "binary@100, 4, 1030, 2",
        // one scale a row (one group), and a group longer than the row
        "binary, 1, 1, 1", "binary, 33, 129, 2", "binary, 17, 14336, 1", "binary@512, 9, 300, 1",
        // batches of many tokens
        "binary@32, 40, 640, 17", "binary@512, 3, 2000, 5", "binary@48, 20, 144, 9", "binary, 20, 700, 9"})
    void matchesTheOracle(String spec, int rows, int cols, int batch) {
        Random rnd = new Random(rows * 83L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec), ActivationHint.BINARY);
        // At 128 bits (NEON's width) the rows keep XnorMatmul, and must still match
        assertEquals(WIDE, XnorTileMatmul.supports(t.spec()), spec);
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        for (int misalign : new int[] {0, 3, 36}) {
            BpmTensor placed = BackendConformance.placed(t, misalign);
            assertEquals(WIDE, java.upload(placed) instanceof RepackedWeights, "the backend takes the XNOR tiles");
            assertArrayEquals(BackendConformance.matmul(oracle, placed, x, batch),
                    BackendConformance.matmul(java, placed, x, batch), spec + " misaligned by " + misalign);
        }
    }

    /**
     * Sign bits past K in the activations' last word count nothing: the kernel masks them, whatever the caller left
     * there (the backend's own binarization leaves none, so this calls the kernel directly, at any vector width).
     */
    @ParameterizedTest(name = "K = {0}")
    @CsvSource({"31", "33", "100", "130"})
    void bitsPastKCountNothing(int cols) {
        int rows = 19;
        Random rnd = new Random(cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("binary@32"), ActivationHint.BINARY);
        TensorSpec spec = t.spec();
        BpmTensor placed = BackendConformance.placed(t, 0);
        int words = (int) spec.wordsPerRow();
        long[] clean = new long[words];
        for (int i = 0; i < words; i++) {
            clean[i] = rnd.nextLong();
        }
        clean[words - 1] &= (cols % 64 == 0) ? -1L : (1L << (cols % 64)) - 1;
        long[] dirty = clean.clone();
        dirty[words - 1] |= (cols % 64 == 0) ? 0 : -1L << (cols % 64);
        float[] scale = {0.75f};
        try (WorkerPool pool = new WorkerPool(1); WeightMemory memory = WeightMemory.closeable()) {
            XnorTileMatmul.Tiles tiles = XnorTileMatmul.repack(spec, placed.data(), pool, memory);
            float[] rowByRow = new float[rows];  // the row kernel, itself held to the oracle, masks them too
            float[] fromClean = new float[rows];
            float[] fromDirty = new float[rows];
            XnorMatmul.rows(spec, placed.data(), clean, scale, rowByRow, 1, 0, rows);
            XnorTileMatmul.tiles(spec, tiles, clean, scale, fromClean, 1, 0, XnorTileMatmul.tiles(spec));
            XnorTileMatmul.tiles(spec, tiles, dirty, scale, fromDirty, 1, 0, XnorTileMatmul.tiles(spec));
            assertArrayEquals(rowByRow, fromClean);
            assertArrayEquals(rowByRow, fromDirty);
            assertFalse(Arrays.equals(clean, dirty), "the test set bits past K");
        }
    }

    /**
     * The tiles widen f16 scales in the lanes, which gives no infinities or NaNs: a tensor holding one keeps the
     * rows' kernel, and its results (infinite, NaN) are still the oracle's.
     */
    @ParameterizedTest(name = "scale bits {0}")
    @CsvSource({"0x7C00", "0xFC00", "0x7E00"})
    void aNonFiniteScaleKeepsTheRowsKernel(String bits) {
        int rows = 9;
        int cols = 256;
        Random rnd = new Random(11);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("binary@64"), ActivationHint.BINARY);
        BpmTensor placed = BackendConformance.placed(t, 0);
        int half = Integer.decode(bits);
        placed.data().set(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                t.spec().scalesOffset() + 2 * 5, (short) half);  // row 1, group 1
        assertFalse(java.upload(placed) instanceof RepackedWeights, "not tiled");
        float[] x = TestTensors.gaussian(rnd, 2 * cols, 1f);
        assertArrayEquals(BackendConformance.matmul(oracle, placed, x, 2),
                BackendConformance.matmul(java, placed, x, 2), bits);
    }

    /** BINARY with binary activations, in groups or one scale a row (at 256 bits or more); not INT8 activations. */
    @Test
    void takesBinaryActivations() {
        assertEquals(WIDE, XnorTileMatmul.supports(spec("binary@32", ActivationHint.BINARY)));
        assertEquals(WIDE, XnorTileMatmul.supports(spec("binary@96", ActivationHint.BINARY)));
        assertEquals(WIDE, XnorTileMatmul.supports(spec("binary@48", ActivationHint.BINARY)));
        assertEquals(WIDE, XnorTileMatmul.supports(spec("binary", ActivationHint.BINARY)));
        assertFalse(XnorTileMatmul.supports(spec("binary@64", ActivationHint.INT8)));
        assertEquals(WIDE, XnorTileMatmul.supports(spec("binary@512", ActivationHint.BINARY)), "a group past the row");
    }

    private static TensorSpec spec(String quant, ActivationHint activations) {
        return Quantizer.quantize("w", new long[] {4, 320}, new float[4 * 320], QuantSpec.parse(quant), activations)
                .spec();
    }
}
