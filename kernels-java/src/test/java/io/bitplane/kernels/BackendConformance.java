package io.bitplane.kernels;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every fast backend against the scalar oracle (each backend's module extends this with the backend it makes):
 * randomized matrices of every encoding, layout and activation mode, odd shapes (one row, odd rows, K not a multiple
 * of 64 or of the group), batches, and weights at misaligned addresses.
 * Integer accumulations (W8A8) must match exactly; float paths within rounding of a different summation order.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class BackendConformance {
    protected Backend fast;
    static final Backend ORACLE = new ScalarBackend();
    static final Arena ARENA = Arena.ofShared();

    /** The backend under test, with two threads so that split products are covered. */
    protected abstract Backend createBackend();

    @BeforeAll
    public void create() {
        fast = createBackend();
    }

    @AfterAll
    public void close() {
        if (fast != null) { // null when the backend could not start here and the class was skipped
            fast.close();
        }
    }

    /**
     * A BINARY tensor's bytes with every padding bit past K set, in each row's last 64-bit words: a writer may leave
     * them so, and they must count for nothing.
     */
    public static EncodedTensor withPaddingBitsSet(EncodedTensor t) {
        byte[] bytes = t.bytes().clone();
        long rows = t.spec().rows();
        long cols = t.spec().cols();
        long words = t.spec().wordsPerRow();
        for (long r = 0; r < rows; r++) {
            for (long i = cols; i < words * 64; i++) {
                int at = (int) ((r * words + i / 64) * 8 + i % 64 / 8);
                bytes[at] |= (byte) (1 << (i % 8));
            }
        }
        return new EncodedTensor(t.spec(), bytes);
    }

    /** The tensor's bytes copied to native memory at {@code misalign} bytes past a 64-byte boundary. */
    public static BpmTensor placed(EncodedTensor t, int misalign) {
        MemorySegment block = ARENA.allocate(t.bytes().length + 128, 64);
        MemorySegment seg = block.asSlice(misalign, t.bytes().length);
        MemorySegment.copy(t.bytes(), 0, seg, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
        return new BpmTensor(t.spec(), seg, 0, 0);
    }

    /**
     * Closing a CPU backend frees the memory of the weights it made at upload (tiles, copies), so that closing a
     * model returns it then and not at some later collection: weights used after fail with IllegalStateException,
     * never read freed memory. The tensor is INT8 x INT8 on the heap: the Java backend tiles it, the native one
     * copies it if it does not hand it to the Java tiles or its own lanes; 9 rows, too few to split over threads,
     * so that a closed worker pool cannot be what fails. Closes {@code b}.
     */
    public static void assertClosingFreesTheUploadedWeights(Backend b) {
        Random rnd = new Random(11);
        EncodedTensor t = Quantizer.quantize("w", new long[] {9, 512}, TestTensors.gaussian(rnd, 9 * 512, 0.1f),
                QuantSpec.parse("int8@32"), ActivationHint.INT8);
        Weights w = b.upload(new BpmTensor(t.spec(), MemorySegment.ofArray(t.bytes().clone()), 0, 0));
        float[] x = TestTensors.gaussian(rnd, 512, 1f);
        Buffer xb = b.allocate(512);
        b.write(x, 0, xb, 0, 512);
        Buffer yb = b.allocate(9);
        b.matmul(w, xb, yb, 1);
        float[] y = new float[9];
        b.read(yb, 0, y, 0, 9);
        assertArrayEquals(matmul(ORACLE, placed(t, 0), x, 1), y, "before close");
        b.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> b.matmul(w, xb, yb, 1),
                "the weights " + b.name() + " made at upload are still usable after close");
        assertFalse(e.getMessage().contains("worker pool"), e.getMessage());
    }

    /** The activation hint spelled f32, int8 or binary. */
    static ActivationHint hint(String act) {
        return switch (act) {
            case "int8" -> ActivationHint.INT8;
            case "binary" -> ActivationHint.BINARY;
            default -> ActivationHint.F32;
        };
    }

    /**
     * Weights one byte shorter than their spec (a tensor cut short by a caller of the API; files are checked when
     * read): the backend refuses them with an IllegalArgumentException naming the tensor, at upload or at the
     * product, and never reads past their bytes.
     */
    @ParameterizedTest(name = "{0} x {1}")
    @CsvSource({"f32, f32", "f16, f32", "int8@32, int8", "int8@16, int8", "int4@32, int8", "int4@32, f32",
        "ternary, int8", "ternary@256, int8", "ternary@48, int8", "ternary, f32", "binary, int8", "binary@48, int8",
        "binary, binary", "binary@64, f32"})
    public void weightsShorterThanTheirSpecAreRefusedByName(String spec, String activations) {
        int rows = 40;
        int cols = 512;
        EncodedTensor t = Quantizer.quantize("w.short", new long[] {rows, cols},
                TestTensors.gaussian(new Random(7), rows * cols, 0.1f), QuantSpec.parse(spec),
                ActivationHint.valueOf(activations.toUpperCase()));
        BpmTensor placed = placed(t, 0);
        BpmTensor cut = new BpmTensor(t.spec(), placed.data().asSlice(0, t.bytes().length - 1), 0, 0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> matmul(fast, cut, TestTensors.gaussian(new Random(8), cols, 1f), 1), spec);
        assertTrue(e.getMessage().contains("w.short"), e.getMessage());
    }

    public static float[] matmul(Backend b, BpmTensor t, float[] x, int batch) {
        Weights w = b.upload(t);
        int n = (int) t.spec().rows();
        Buffer xb = b.allocate(x.length);
        b.write(x, 0, xb, 0, x.length);
        Buffer yb = b.allocate(batch * n);
        b.matmul(w, xb, yb, batch);
        float[] y = new float[batch * n];
        b.read(yb, 0, y, 0, y.length);
        return y;
    }

    @ParameterizedTest(name = "{0} {1}x{2} batch {3} act {4}")
    @CsvSource({
        "f32, 1, 64, 1, f32", "f32, 7, 100, 1, f32", "f32, 33, 257, 5, f32", "f32, 300, 512, 9, f32",
        "f16, 5, 70, 3, f32", "bf16, 3, 64, 2, f32", "f16, 40, 1030, 1, f32", "bf16, 33, 2050, 4, f32",
        "int8@32, 1, 32, 1, f32", "int8@32, 9, 100, 3, f32", "int8@64, 130, 1000, 4, f32",
        "int8@32, 1, 32, 1, int8", "int8@32, 9, 100, 3, int8", "int8@128, 300, 1024, 8, int8",
        "int8@32, 1001, 64, 2, int8", "int8@48, 5, 96, 2, int8",
        "int4@32, 7, 100, 2, f32", "int4@32, 7, 100, 2, int8", "int4-asym@64, 5, 130, 3, f32",
        "ternary, 9, 200, 2, f32", "ternary@64, 9, 200, 2, int8", "binary, 65, 129, 3, f32",
        "binary, 1, 1, 1, int8", "binary, 3, 130, 2, int8", "ternary, 5, 131, 3, int8", "ternary, 5, 131, 3, f32",
        "ternary-twn@32, 4, 100, 1, int8", "int4@32, 3, 100, 4, int8", "int4@128, 600, 512, 2, int8",
        "int4-asym@32, 3, 70, 2, int8", "int4-asym@128, 9, 300, 2, f32", "ternary, 700, 256, 1, int8",
        "int4-rtn@64, 1, 64, 33, f32",
        // Shapes the row-expanding kernel takes: long rows, big groups, or batches with INT8 activations.
        "ternary, 9, 1000, 1, f32", "ternary, 33, 2000, 5, int8", "ternary, 1, 4100, 2, f32",
        "binary, 7, 700, 3, f32", "binary, 5, 1030, 4, int8", "int4@128, 5, 1000, 1, f32",
        "int4-asym@128, 9, 1000, 4, int8", "int4-asym@256, 3, 600, 2, f32", "int4@32, 17, 300, 8, int8",
        "ternary@32, 9, 200, 7, int8", "ternary@64, 1, 64, 64, int8",
        // One token over many whole groups, a partial last group, and long groups (the native kernels' fast paths).
        "ternary@32, 5, 640, 1, int8", "int4@32, 3, 1000, 1, int8", "binary@64, 3, 1030, 1, int8",
        "int4-asym@32, 7, 520, 1, int8", "int8@32, 3, 333, 1, int8", "int8@32, 6, 1024, 1, int8",
        "ternary, 5, 1024, 1, int8", "int4@96, 4, 1000, 1, int8", "int4@32, 9, 700, 1, f32",
        // Groups of 16, as the k-quants of GGUF files import (Q2_K, Q3_K, Q6_K): one token, batches, both activations.
        "int8@16, 9, 512, 1, int8", "int8@16, 7, 768, 3, f32", "int8@16, 5, 256, 8, int8", "int8@16, 3, 272, 1, f32",
        "int4-rtn@16, 9, 512, 1, int8", "int4-rtn@16, 5, 768, 4, f32", "int4-rtn@16, 33, 256, 9, int8",
        "int4-asym-rtn@16, 9, 512, 1, int8", "int4-asym-rtn@16, 5, 256, 2, f32", "int4-asym-rtn@16, 33, 512, 8, int8",
        // Rows of whole 512 values in groups of 32: the native group lanes (up to five tokens), then the batch kernel.
        "int8@32, 17, 2048, 5, int8", "int8@32, 9, 512, 6, int8", "int4@32, 9, 1536, 1, int8",
        // INT8 rows of 4096 values or more: natively two blocks of eight rows at a time, a last block alone.
        "int8@32, 17, 4096, 1, int8", "int8@32, 32, 4608, 2, int8",
        "int4@32, 3, 512, 4, int8", "int4@32, 10, 1024, 7, int8", "int4-asym@32, 9, 1024, 3, int8",
        // One token over bit planes by whole 256-value blocks: rows of one group with a tail past the last block,
        // groups of 32 with and without blocks to spare, long groups ending inside a block.
        "ternary, 3, 4100, 1, int8", "binary, 2, 9000, 1, int8", "binary@32, 3, 1000, 1, int8",
        "int4@32, 1, 4100, 1, int8", "int4-asym@256, 3, 1100, 1, int8", "ternary@512, 2, 1300, 1, int8",
        "binary@256, 4, 768, 1, int8", "int4-asym@32, 5, 256, 1, int8",
        // Groups of 64 to 256 inside a block (natively: the block's lanes added per group), with tails and mins.
        "int4@128, 3, 1100, 1, int8", "ternary@64, 3, 1030, 1, int8", "int4-asym@64, 2, 1536, 1, int8",
        "binary@128, 5, 2048, 1, int8", "ternary@256, 3, 1300, 1, int8", "int4-asym@256, 2, 2048, 1, int8",
        // One token over plane rows of one group each, eight rows at a time in the native kernels, then the rest.
        "ternary, 9, 1024, 1, int8", "binary, 17, 512, 1, int8", "int4@1024, 10, 1024, 1, int8",
        "int4-asym@512, 8, 512, 1, int8",
        // One token over BINARY rows of one scale each in tiles of 32 rows (natively on AVX-512: four tiles at a
        // time, then one at a time): rows past the last whole tile, values past the last 16, split over threads.
        "binary, 200, 1030, 1, int8", "binary, 33, 17, 1, int8", "binary, 520, 2100, 1, int8",
        // Binary rows in 16-bit lanes: groups of 256, a short last chunk, and rows longer than one int16 run.
        "binary@256, 3, 1030, 2, int8", "binary, 2, 9000, 2, int8", "binary@512, 3, 2000, 1, int8",
        // Binary activations (XNOR-Net): rows of one group or of whole words, partial last words, groups that are
        // not whole words (masked at both ends), a group longer than the row, many rows, a large batch; rows and
        // groups longer than the 31 rounds a native vector counts before widening (AVX2 124 words, AVX-512 248).
        "binary, 3, 20000, 1, binary", "binary@16384, 2, 20000, 1, binary", "binary, 1, 1, 1, binary",
        "binary, 3, 130, 2, binary", "binary, 65, 129, 3, binary",
        "binary@64, 5, 1030, 4, binary", "binary@256, 3, 1030, 2, binary", "binary, 2, 9000, 2, binary",
        "binary@32, 3, 100, 2, binary", "binary@128, 7, 64, 1, binary", "binary, 1000, 64, 1, binary",
        "binary@192, 9, 700, 33, binary", "binary@48, 5, 200, 3, binary", "binary@96, 3, 1000, 2, binary",
        "binary@32, 4, 31, 1, binary", "binary@40, 3, 130, 1, binary",
        // Rows of one group in runs, one row of each a pass (vectors of 256 bits and up): runs that end early.
        "binary, 37, 1100, 2, binary", "binary, 17, 2048, 1, binary",
        // Batches of six or more with INT8 activations (natively, with VNNI: 32 rows a pass padded past the last
        // row, four tokens at a time and then the rest, the values past the last 64 one at a time, groups of any
        // multiple of 4 or one a row; K not a multiple of 4 goes to the other kernels).
        "int8@64, 35, 320, 6, int8", "int8@32, 33, 100, 8, int8", "int4@32, 47, 256, 9, int8", "int4-asym@48, 5, 192, 10, int8",
        "ternary, 40, 128, 8, int8", "ternary@64, 31, 640, 12, int8", "binary, 65, 200, 16, int8",
        "binary@32, 3, 1000, 8, int8", "int4@1024, 9, 2052, 8, int8", "ternary, 5, 130, 8, int8",
        // Batches of 16 and more (in Java without the lookup tiles, AVX2 and 128 bits: ternary planes packed at load,
        // binary planes, with the tokens in the lanes): two groups of tokens or more, the last partial; binary rows
        // ending inside a block of 256 values.
        "binary, 9, 1030, 33, int8", "ternary, 9, 1100, 20, int8",
        // and in groups of whole blocks: ternary planes in TQ2_0's 256 values, binary in 512, the last group short
        "ternary@256, 9, 1000, 17, int8", "binary@512, 5, 1100, 33, int8"})
    public void matmulMatchesTheOracle(String spec, int rows, int cols, int batch, String act) {
        Random rnd = new Random(rows * 31L + cols);
        ActivationHint hint = hint(act);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(spec), hint);
        assertMatchesTheOracle(spec, t, TestTensors.gaussian(rnd, batch * cols, 1f), batch);
    }

    /** Layout 1 (packed codes) against the oracle, which reads it through Dequantizer.planeCode. */
    @ParameterizedTest(name = "packed {0} {1}x{2} batch {3} act {4}")
    @CsvSource({"int4@32, 7, 100, 2, int8", "int4@32, 3, 1000, 1, int8", "int4@32, 9, 700, 1, f32",
        "int4@64, 17, 300, 8, int8", "int4-asym@32, 7, 520, 1, int8", "int4-asym@128, 5, 1000, 3, f32",
        "ternary, 5, 1024, 1, int8", "ternary@32, 5, 640, 1, int8", "ternary, 9, 200, 7, int8",
        "ternary, 1, 4100, 2, f32", "ternary@64, 600, 512, 2, int8", "int4@32, 1, 32, 1, int8",
        "int4@48, 5, 130, 1, int8", "ternary, 3, 1, 1, int8", "int4@64, 3, 640, 1, int8",
        "int4-asym@128, 3, 1024, 1, int8", "ternary@256, 2, 1300, 1, int8",
        // One token, groups of 64 to 224 (natively eight groups at a time; groups of whole blocks left over go one
        // at a time, others to the general path), with tails and mins.
        "int4@64, 3, 1100, 1, int8", "ternary@64, 5, 1100, 1, int8", "ternary@128, 3, 1300, 1, int8",
        "ternary@96, 3, 1000, 2, int8", "ternary@32, 4, 300, 3, int8",
        "int4-asym@128, 2, 2100, 1, int8", "int4@96, 3, 1700, 1, int8", "ternary@192, 2, 3300, 1, int8",
        // Batches whose groups are whole blocks (the native kernel's tokens-at-a-time path), odd batches included.
        "ternary, 7, 512, 5, int8", "int4@64, 9, 640, 3, int8", "int4-asym@128, 5, 1024, 4, int8",
        "ternary@256, 3, 768, 2, int8",
        // Rows longer than one int16 run of the kernels that sum in 16-bit lanes, and groups of whole blocks.
        "ternary, 2, 6000, 1, int8", "ternary@128, 5, 1000, 3, int8", "int4@32, 2, 4100, 3, int8",
        "int4@128, 4, 1000, 3, int8", "int4-asym@64, 3, 1100, 2, int8",
        // Groups of an odd number of blocks (AVX-512 takes two blocks per vector, the last one alone).
        "ternary, 3, 640, 1, int8", "ternary@384, 3, 1152, 2, int8", "int4@192, 3, 576, 1, int8",
        // One token over rows of one group each, eight rows at a time in the native kernels, and the rows after.
        "ternary, 9, 1024, 1, int8", "ternary, 17, 256, 1, int8", "int4@512, 11, 512, 1, int8",
        "int4-asym@256, 16, 256, 1, int8",
        // The same over an odd number of blocks (the VNNI kernel reads q laid out two blocks a vector, zeros
        // beside the last block alone).
        "ternary, 9, 384, 1, int8", "ternary, 8, 1152, 1, int8", "int4@192, 8, 192, 1, int8",
        "int4-asym@320, 9, 320, 1, int8",
        // The same over rows of 1 KB or more (natively read in two parts at once), with and without a block left
        // over and a last half block.
        "ternary, 9, 4480, 1, int8", "ternary, 8, 4096, 1, int8", "ternary, 16, 8320, 1, int8",
        // INT4 in groups of 32 over rows of whole 512 values: the native group lanes for up to five tokens.
        "int4@32, 9, 1024, 2, int8", "int4@32, 17, 1536, 5, int8", "int4-asym@32, 11, 512, 1, int8",
        // Float activations over several rows (four at a time natively, sharing each load of x; a last pass of
        // fewer), groups of whole 32 values and one group a row, rows not a multiple of 32.
        "ternary, 6, 1000, 1, f32", "ternary@64, 5, 640, 3, f32", "int4@32, 7, 333, 2, f32",
        "int4-asym@64, 9, 200, 1, f32",
        // Batches of six or more with INT8 activations (the VNNI batch kernel natively; see the plane cases); of
        // 16 and more, ternary with the tokens in the lanes in Java on AVX2 and 128 bits, whole groups and a part.
        "int4@32, 33, 200, 8, int8", "int4-asym@64, 9, 640, 11, int8", "ternary, 35, 516, 9, int8",
        "ternary, 9, 1100, 16, int8", "ternary, 35, 516, 33, int8", "ternary@128, 9, 700, 20, int8",
        // Spans of eight blocks or more (natively on AVX2 summed in runs of eight blocks, two tokens at a time in
        // batches): a pair of tokens and one more, groups of 1024, and groups of nine blocks (a run and a block).
        "ternary, 9, 2048, 3, int8", "ternary@1024, 5, 3072, 2, int8", "ternary@1152, 3, 2304, 1, int8",
        "ternary@1152, 3, 2304, 2, int8"})
    public void packedCodesMatchTheOracle(String spec, int rows, int cols, int batch, String act) {
        Random rnd = new Random(rows * 37L + cols);
        ActivationHint hint = hint(act);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(spec), hint);
        assertMatchesTheOracle("packed " + spec, io.bitplane.format.PackedCodes.relayout(t),
                TestTensors.gaussian(rnd, batch * cols, 1f), batch);
    }

    /**
     * Packed TERNARY fields of 3, which the writer never writes and the format reads as the code 2: every backend
     * reads them as the reference does, not as some other code (a mask of the values coded +1 would say 1; the
     * Java backend's tiles, which hold codes as mask and sign bits, are not used for such a tensor).
     */
    @ParameterizedTest(name = "packed ternary with fields of 3, batch {0} act {1}")
    @CsvSource({"1, f32", "2, f32", "1, int8", "3, int8", "17, int8"})
    public void packedTernaryFieldThreeReadsAsTwo(int batch, String act) {
        int rows = 5;
        int cols = 700;
        Random rnd = new Random(3);
        EncodedTensor t = io.bitplane.format.PackedCodes.relayout(Quantizer.quantize("w", new long[] {rows, cols},
                TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse("ternary"), hint(act)));
        byte[] bytes = t.bytes().clone();
        long codeBytes = t.spec().scalesOffset();
        for (int i = 0; i < codeBytes; i += 3) {
            bytes[i] |= (byte) (3 << (2 * (i % 4))); // one field of every third byte becomes 3
        }
        assertMatchesTheOracle("packed ternary, fields of 3", new EncodedTensor(t.spec(), bytes),
                TestTensors.gaussian(rnd, batch * cols, 1f), batch);
    }

    /**
     * Every weight at its largest field and every activation code at 127, over long rows: the kernels that sum
     * products in 16-bit lanes must move them into wider sums before any lane overflows.
     */
    @ParameterizedTest(name = "{0} packed {1} batch {2}")
    @CsvSource({"ternary, true, 2", "int4@32, true, 2", "int4@1024, true, 2", "int4-asym@1024, true, 2",
        "binary, false, 2", "binary@256, false, 2", "int8@32, false, 2",
        // one token over bit planes (whole-block sums in 16-bit lanes)
        "ternary, false, 1", "int4@32, false, 1", "int4@1024, false, 1", "int4-asym@1024, false, 1",
        "binary, false, 1",
        // batches of eight (natively with VNNI: codes made unsigned and summed in int32 lanes)
        "int8@32, false, 8", "int4@1024, true, 8", "int4-asym@16384, false, 8", "ternary, true, 8",
        // batches of 16 (in Java on AVX2 and 128 bits, summed with the tokens in int16 lanes 32 bytes at a time)
        "ternary, true, 16", "binary, false, 16",
        // one token over packed rows of one group each (eight rows at a time natively, then the ninth)
        "ternary, true, 1", "int4-asym@16384, true, 1", "int4-asym@16384, false, 1"})
    public void largestCodesDoNotOverflow(String spec, boolean packed, int batch) {
        int rows = 9;
        int cols = 16384;
        float value = spec.startsWith("binary") ? -0.1f : 0.1f;
        float[] weights = new float[rows * cols];
        java.util.Arrays.fill(weights, value);
        if (spec.startsWith("int4-asym")) {
            for (int i = 0; i < weights.length; i += 2) {
                weights[i] = 0f;  // the asymmetric grid's largest field needs a spread
            }
        } else if (spec.startsWith("int4")) {
            // The symmetric grid maps a group's extreme to -8 (field 0) and 7/8 of it to +7 (field 15).
            java.util.Arrays.fill(weights, 0.0875f);
            for (int i = 0; i < weights.length; i += 32) {
                weights[i] = -0.1f;
            }
        }
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, weights, QuantSpec.parse(spec),
                ActivationHint.INT8);
        float[] x = new float[batch * cols];
        java.util.Arrays.fill(x, 1f);
        assertMatchesTheOracle(spec, packed ? io.bitplane.format.PackedCodes.relayout(t) : t, x, batch);
    }

    private void assertMatchesTheOracle(String spec, EncodedTensor t, float[] x, int batch) {
        ActivationHint hint = t.spec().activations();
        int cols = (int) t.spec().cols();
        for (int misalign : new int[] {0, 1, 7, 36}) {
            BpmTensor placed = placed(t, misalign);
            float[] expected = matmul(ORACLE, placed, x, batch);
            float[] actual = matmul(fast, placed, x, batch);
            boolean exact = hint != ActivationHint.F32 && t.spec().encoding().quantized;
            if (exact) {
                assertArrayEquals(expected, actual, "integer accumulation must match exactly");
            } else {
                assertWithinRounding(expected, actual, cols, spec + " misalign " + misalign);
            }
        }
    }

    /**
     * Float paths: each output within rounding of another summation order over {@code cols} products (1e-4 x (1 +
     * |expected|) x sqrt(cols)).
     */
    public static void assertWithinRounding(float[] expected, float[] actual, int cols, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            float tol = 1e-4f * (1 + Math.abs(expected[i])) * (float) Math.sqrt(cols);
            assertEquals(expected[i], actual[i], tol, what + " output " + i);
        }
    }

    /**
     * A token's result may not depend on the batch it came in nor on how warm the JIT is: the server's greedy
     * output must be the same alone or batched, and the same seed must give the same text in a cold JVM.
     */
    @ParameterizedTest
    @CsvSource({"f32, f32, 11", "f16, f32, 11", "bf16, f32, 11", "int8@32, f32, 11", "int8@32, int8, 11",
        "int4@32, f32, 11", "ternary, int8, 11", "ternary, f32, 11", "binary, f32, 11", "int4@32, int8, 11",
        "int4-asym@128, f32, 11", "binary, binary, 11",
        // Java on AVX2 and 128 bits: batches of 16 with the tokens in the lanes, one token by another kernel
        "ternary, int8, 17"})
    public void resultsDoNotDependOnTheBatchNorOnWarmUp(String spec, String act, int batch) {
        // batches of 11: natively with VNNI, the batch kernel's passes of four tokens and a last one of three
        Random rnd = new Random(9);
        int rows = 48;
        int cols = 96;
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(spec), hint(act));
        BpmTensor placed = placed(t, 0);
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        float[] cold = matmul(fast, placed, x, batch);
        for (int i = 0; i < 20_000; i++) {
            matmul(fast, placed, x, batch);
        }
        assertArrayEquals(cold, matmul(fast, placed, x, batch), "warm result differs from cold");
        for (int b = 0; b < batch; b++) {
            float[] alone = matmul(fast, placed, java.util.Arrays.copyOfRange(x, b * cols, (b + 1) * cols), 1);
            assertArrayEquals(java.util.Arrays.copyOfRange(cold, b * rows, (b + 1) * rows), alone, "token " + b);
        }
    }

    /** Random plane bits: ternary signs where the mask is 0 (not canonical), every INT4 code, every binary bit. */
    @ParameterizedTest
    @CsvSource({"ternary, 1, int8", "ternary, 2, int8", "ternary@32, 1, int8", "ternary@32, 2, int8",
        "int4@32, 1, int8", "int4@32, 2, int8", "binary, 1, int8", "binary, 2, int8", "int4-asym@32, 1, int8",
        "binary, 1, binary", "binary, 3, binary", "binary@64, 2, binary"})
    public void arbitraryPlaneBitsMatchTheOracleExactly(String spec, int batch, String act) {
        Random rnd = new Random(spec.hashCode());
        int rows = 9;
        int cols = 330;
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                QuantSpec.parse(spec), hint(act));
        byte[] bytes = t.bytes().clone();
        long wordsPerRow = t.spec().wordsPerRow();
        for (int r = 0; r < rows; r++) {
            for (int p = 0; p < t.spec().encoding().planes; p++) {
                for (int wd = 0; wd < wordsPerRow; wd++) {
                    long word = rnd.nextLong();
                    int valid = (int) Math.min(64, cols - 64L * wd);
                    if (valid < 64) {
                        word &= (1L << valid) - 1; // padding bits stay 0, as the format requires
                    }
                    int at = (int) (((long) (r * t.spec().encoding().planes + p) * wordsPerRow + wd) * 8);
                    java.nio.ByteBuffer.wrap(bytes, at, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).putLong(word);
                }
            }
        }
        BpmTensor placed = placed(new EncodedTensor(t.spec(), bytes), 5);
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        assertArrayEquals(matmul(ORACLE, placed, x, batch), matmul(fast, placed, x, batch));
    }

    @Test
    public void elementwiseOpsMatchTheOracle() {
        Random rnd = new Random(5);
        for (int dim : new int[] {1, 7, 64, 100, 513}) {
            int batch = 3;
            float[] x = TestTensors.gaussian(rnd, batch * dim, 1f);
            float[] g = TestTensors.gaussian(rnd, dim, 1f);
            BpmTensor gamma = placed(EncodedTensor.ofFloats(TensorSpec.of("g", io.bitplane.format.Encoding.F32, 0,
                    dim), g), 3);
            float[] a = run(ORACLE, x, gamma, dim, batch);
            float[] b = run(fast, x, gamma, dim, batch);
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], 1e-5f * (1 + Math.abs(a[i])), "dim " + dim + " value " + i);
            }
        }
    }

    /** A bias is added to every row, exactly: f16 and f32 biases, one row and several, misaligned weights. */
    @Test
    public void addBiasAddsTheBiasToEveryRow() {
        Random rnd = new Random(6);
        for (int n : new int[] {1, 7, 64, 513}) {
            for (Encoding enc : new Encoding[] {Encoding.F32, Encoding.F16}) {
                int batch = n % 3 + 1;
                float[] bias = TestTensors.gaussian(rnd, n, 1f);
                TensorSpec spec = TensorSpec.of("b", enc, 0, n);
                EncodedTensor t = enc == Encoding.F32 ? EncodedTensor.ofFloats(spec, bias)
                        : EncodedTensor.ofHalfBits(spec, halves(bias));
                float[] x = TestTensors.gaussian(rnd, batch * n, 1f);
                Buffer xb = fast.allocate(x.length);
                fast.write(x, 0, xb, 0, x.length);
                fast.addBias(xb, fast.upload(placed(t, 5)), n, batch);
                float[] got = new float[x.length];
                fast.read(xb, 0, got, 0, got.length);
                for (int i = 0; i < x.length; i++) {
                    float b = enc == Encoding.F32 ? bias[i % n] : Halfs.f16ToFloat(Halfs.floatToF16(bias[i % n]));
                    assertEquals(x[i] + b, got[i], enc + " n " + n + " value " + i);
                }
            }
        }
    }

    private static short[] halves(float[] f) {
        short[] h = new short[f.length];
        for (int i = 0; i < f.length; i++) {
            h[i] = Halfs.floatToF16(f[i]);
        }
        return h;
    }

    /**
     * Rotary embeddings with and without rope scaling: the oracle against the definition (pair i of a head turned
     * by position x theta^(-2i / headSize) / factor i, in doubles), the backend against the oracle; positions past
     * the first rotary table (512) make it grow, and new factors replace it.
     */
    @Test
    public void ropeMatchesTheDefinitionWithAndWithoutScaling() {
        Random rnd = new Random(12);
        for (int headSize : new int[] {2, 8, 64}) {
            float[] scaled = new float[headSize / 2];
            for (int i = 0; i < scaled.length; i++) {
                scaled[i] = 0.5f + 8 * rnd.nextFloat();
            }
            for (float[] factors : new float[][] {null, scaled}) {
                int heads = 3;
                int[] positions = {0, 5, 700};
                float[] x = TestTensors.gaussian(rnd, positions.length * heads * headSize, 1f);
                float[] oracle = rope(ORACLE, x, positions, heads, headSize, factors);
                float[] actual = rope(fast, x, positions, heads, headSize, factors);
                for (int j = 0; j < x.length; j += 2) {
                    int pos = positions[j / (heads * headSize)];
                    int pair = j % headSize / 2;
                    double angle = pos * Math.pow(500000, -2.0 * pair / headSize)
                            / (factors == null ? 1 : factors[pair]);
                    double re = x[j] * Math.cos(angle) - x[j + 1] * Math.sin(angle);
                    double im = x[j] * Math.sin(angle) + x[j + 1] * Math.cos(angle);
                    String what = "head " + headSize + (factors == null ? "" : " scaled") + ", value " + j;
                    assertEquals(re, oracle[j], 2e-3 * (1 + Math.abs(re)), what);  // float angles at position 700
                    assertEquals(im, oracle[j + 1], 2e-3 * (1 + Math.abs(im)), what);
                    assertEquals(oracle[j], actual[j], 1e-5f * (1 + Math.abs(oracle[j])), what);
                    assertEquals(oracle[j + 1], actual[j + 1], 1e-5f * (1 + Math.abs(oracle[j + 1])), what);
                }
            }
        }
    }

    private static float[] rope(Backend be, float[] x, int[] positions, int heads, int headSize, float[] factors) {
        Buffer v = be.allocate(x.length);
        be.write(x, 0, v, 0, x.length);
        be.rope(v, positions.length, positions, heads, headSize, 500000f, factors);
        float[] r = new float[x.length];
        be.read(v, 0, r, 0, r.length);
        return r;
    }

    @Test
    public void swiGluAndAttentionMatchTheOracle() {
        Random rnd = new Random(6);
        for (int n : new int[] {1, 15, 172, 1000}) {
            float[] g = TestTensors.gaussian(rnd, n, 3f);
            float[] u = TestTensors.gaussian(rnd, n, 1f);
            float[] a = swiGlu(ORACLE, g, u);
            float[] b = swiGlu(fast, g, u);
            for (int i = 0; i < n; i++) {
                assertEquals(a[i], b[i], 1e-5f * (1 + Math.abs(a[i])), "swiGlu " + i);
            }
        }
        for (int headSize : new int[] {6, 8, 12, 16, 24, 40, 64}) {
            AttentionShape s = new AttentionShape(4, 2, headSize);
            int positions = 37;
            int batch = 3;
            float[] q = TestTensors.gaussian(rnd, batch * s.queryDim(), 1f);
            float[] keys = TestTensors.gaussian(rnd, positions * s.kvDim(), 1f);
            float[] values = TestTensors.gaussian(rnd, positions * s.kvDim(), 1f);
            int[] pos = {0, 17, 36};
            float[] a = attention(ORACLE, q, keys, values, pos, s);
            float[] b = attention(fast, q, keys, values, pos, s);
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i], b[i], 1e-5f * (1 + Math.abs(a[i])), "head size " + headSize + " value " + i);
            }
        }
    }

    /**
     * Heads shorter than a vector (the Java backend puts positions in the lanes there: stories260K's heads of 8 on
     * AVX-512): query heads one, two and three to a KV head (pairs and a single head), positions that fill whole
     * vectors and leave a tail, a context long enough to be split. Each token's output is the same bit for bit
     * alone as beside the others.
     */
    @ParameterizedTest(name = "{0} heads, {1} KV heads of {2}")
    @CsvSource({"6, 2, 8", "4, 1, 4", "8, 8, 8", "8, 4, 2"})
    public void smallHeadsMatchTheOracleAloneAndBatched(int heads, int kvHeads, int headSize) {
        Random rnd = new Random(heads * 7L + headSize);
        AttentionShape s = new AttentionShape(heads, kvHeads, headSize);
        int positions = 900;
        int[] pos = {0, 15, 16, 47, 899};
        float[] q = TestTensors.gaussian(rnd, pos.length * s.queryDim(), 1f);
        float[] keys = TestTensors.gaussian(rnd, positions * s.kvDim(), 0.5f);
        float[] values = TestTensors.gaussian(rnd, positions * s.kvDim(), 1f);
        float[] expected = attention(ORACLE, q, keys, values, pos, s);
        float[] batched = attention(fast, q, keys, values, pos, s);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], batched[i], 1e-5f * (1 + Math.abs(expected[i])), "value " + i);
        }
        for (int b = 0; b < pos.length; b++) {
            float[] alone = attention(fast, java.util.Arrays.copyOfRange(q, b * s.queryDim(), (b + 1) * s.queryDim()),
                    keys, values, new int[] {pos[b]}, s);
            assertArrayEquals(java.util.Arrays.copyOfRange(batched, b * s.queryDim(), (b + 1) * s.queryDim()), alone,
                    "token " + b);
        }
    }

    /**
     * A long context with many heads: large enough that a backend splits the heads over its threads. The result
     * matches the oracle, and each token's output is the same bit for bit alone as beside another token. With one
     * KV head (multi-query), one token alone is split head by head and two go by KV head on the Java backend
     * (fewer KV heads than threads would idle one), so there the two ways must agree too. Three query heads a KV
     * head: the Java backend's weighted sums go two heads at a time, and the third alone.
     */
    @ParameterizedTest
    @CsvSource({"32, 4", "32, 1", "24, 8"})
    public void longContextAttentionMatchesTheOracleAloneAndBatched(int heads, int kvHeads) {
        Random rnd = new Random(8);
        AttentionShape s = new AttentionShape(heads, kvHeads, 64);
        int positions = 600;
        float[] q = TestTensors.gaussian(rnd, 2 * s.queryDim(), 1f);
        float[] keys = TestTensors.gaussian(rnd, positions * s.kvDim(), 0.3f);
        float[] values = TestTensors.gaussian(rnd, positions * s.kvDim(), 1f);
        int[] pos = {599, 300};
        float[] expected = attention(ORACLE, q, keys, values, pos, s);
        float[] batched = attention(fast, q, keys, values, pos, s);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], batched[i], 1e-5f * (1 + Math.abs(expected[i])), "value " + i);
        }
        for (int b = 0; b < 2; b++) {
            float[] alone = attention(fast, java.util.Arrays.copyOfRange(q, b * s.queryDim(), (b + 1) * s.queryDim()),
                    keys, values, new int[] {pos[b]}, s);
            assertArrayEquals(java.util.Arrays.copyOfRange(batched, b * s.queryDim(), (b + 1) * s.queryDim()), alone,
                    "token " + b);
        }
    }

    /**
     * Runs of columns over caches of their own (sequences decoded side by side, one with a prompt of three columns):
     * where the backend attends them in one call, each column's output is what one attention call over its run
     * gives, bit for bit; where it has no such op, it says so and writes nothing. Head sizes that are and are not
     * whole vectors, grouped and multi-query heads, contexts long enough that the backend splits them.
     */
    @ParameterizedTest(name = "{0} heads, {1} KV heads of {2}, positions up to {3}")
    @CsvSource({"8, 4, 64, 40", "8, 4, 12, 40", "32, 4, 64, 700", "4, 1, 16, 9", "6, 2, 32, 300"})
    public void attentionOfRunsEqualsOneCallARun(int heads, int kvHeads, int headSize, int longest) {
        Random rnd = new Random(heads * 31L + headSize);
        AttentionShape s = new AttentionShape(heads, kvHeads, headSize);
        int[] runStarts = {0, 1, 4, 5, 7};  // runs of 1, 3, 1 and 2 columns
        int runs = runStarts.length - 1;
        int batch = runStarts[runs];
        int capacity = longest + 1;
        int[] pos = new int[batch];
        Buffer[] keys = new Buffer[runs];
        Buffer[] values = new Buffer[runs];
        float[][] k = new float[runs][];
        float[][] v = new float[runs][];
        for (int i = 0; i < runs; i++) {
            int first = i == 1 ? 0 : rnd.nextInt(capacity - 2);  // the three-column run is a prompt from 0
            for (int b = runStarts[i]; b < runStarts[i + 1]; b++) {
                pos[b] = first + b - runStarts[i];
            }
            k[i] = TestTensors.gaussian(rnd, capacity * s.kvDim(), 0.5f);
            v[i] = TestTensors.gaussian(rnd, capacity * s.kvDim(), 1f);
            keys[i] = fast.allocate(k[i].length);
            values[i] = fast.allocate(v[i].length);
            fast.write(k[i], 0, keys[i], 0, k[i].length);
            fast.write(v[i], 0, values[i], 0, v[i].length);
        }
        pos[0] = longest;
        float[] q = TestTensors.gaussian(rnd, batch * s.queryDim(), 1f);
        Buffer qb = fast.allocate(q.length);
        fast.write(q, 0, qb, 0, q.length);
        Buffer out = fast.allocate(q.length);
        float[] untouched = new float[q.length];
        java.util.Arrays.fill(untouched, 7f);
        fast.write(untouched, 0, out, 0, untouched.length);
        boolean done = fast.attentionOfRuns(out, qb, keys, values, pos, runStarts, runs, s);
        float[] got = new float[q.length];
        fast.read(out, 0, got, 0, got.length);
        if (!done) {
            assertArrayEquals(untouched, got, "a backend without the op writes nothing");
            return;
        }
        for (int i = 0; i < runs; i++) {
            int from = runStarts[i] * s.queryDim();
            int to = runStarts[i + 1] * s.queryDim();
            float[] alone = attention(fast, java.util.Arrays.copyOfRange(q, from, to), k[i], v[i],
                    java.util.Arrays.copyOfRange(pos, runStarts[i], runStarts[i + 1]), s);
            assertArrayEquals(alone, java.util.Arrays.copyOfRange(got, from, to), "run " + i);
        }
    }

    /** Runs that do not start at column 0, or overlap, are refused with a message by every backend. */
    @Test
    public void attentionOfRunsRefusesRunsOutOfOrder() {
        AttentionShape s = new AttentionShape(4, 2, 16);
        Buffer q = fast.allocate(2 * s.queryDim());
        Buffer out = fast.allocate(2 * s.queryDim());
        Buffer[] caches = {fast.allocate(4 * s.kvDim()), fast.allocate(4 * s.kvDim())};
        for (int[] starts : new int[][] {{1, 2, 3}, {0, 1, 1}, {0, 2, 1}}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> fast.attentionOfRuns(out, q, caches, caches, new int[] {0, 1, 2}, starts, 2, s));
            assertTrue(e.getMessage().startsWith("attentionOfRuns: "), e.getMessage());
        }
    }

    private static float[] swiGlu(Backend be, float[] g, float[] u) {
        Buffer gb = be.allocate(g.length);
        Buffer ub = be.allocate(u.length);
        be.write(g, 0, gb, 0, g.length);
        be.write(u, 0, ub, 0, u.length);
        be.swiGlu(gb, ub, g.length);
        float[] r = new float[g.length];
        be.read(gb, 0, r, 0, r.length);
        return r;
    }

    /** {@code be}'s attention over these arrays, one position a token (its own buffers, read back). */
    public static float[] attention(Backend be, float[] q, float[] k, float[] v, int[] pos, AttentionShape s) {
        Buffer qb = be.allocate(q.length);
        Buffer kb = be.allocate(k.length);
        Buffer vb = be.allocate(v.length);
        be.write(q, 0, qb, 0, q.length);
        be.write(k, 0, kb, 0, k.length);
        be.write(v, 0, vb, 0, v.length);
        Buffer out = be.allocate(q.length);
        be.attention(out, qb, kb, vb, pos, pos.length, s);
        float[] r = new float[q.length];
        be.read(out, 0, r, 0, r.length);
        return r;
    }

    private static float[] run(Backend be, float[] x, BpmTensor gamma, int dim, int batch) {
        Buffer xb = be.allocate(x.length);
        be.write(x, 0, xb, 0, x.length);
        Buffer out = be.allocate(x.length);
        Weights g = be.upload(gamma);
        be.rmsNorm(out, xb, g, dim, batch, 1e-5f);
        be.add(out, xb, x.length);
        be.addBias(out, g, dim, batch);
        float[] r = new float[x.length];
        be.read(out, 0, r, 0, r.length);
        return r;
    }

    /**
     * Products of one input (a layer's q, k and v) through {@link Backend#matmuls}: the same bits as each product
     * alone, for every mix a backend may run as one job (INT8 activations over packed, planes, lane and tile
     * weights; float activations; batches past the lanes' five) and jobs too small to split.
     */
    @ParameterizedTest(name = "{0} x {1}, rows {2}, batch {3}, {4}")
    @CsvSource(delimiter = ';', value = {
        "ternary,ternary,ternary; int8; 300,37,37; 1; packed", "ternary,ternary,ternary; int8; 300,37,37; 3; planes",
        "ternary,ternary,ternary; int8; 300,37,37; 1; mixed", "ternary@64,ternary@64; int8; 300,37; 2; planes",
        "binary,binary,binary; int8; 290,33,1; 1; planes", "binary,binary; f32; 290,33; 1; planes",
        "int4@32,int4@32,int4@32; int8; 301,40,40; 1; packed", "int4@32,int4@32,int4@32; int8; 301,40,40; 1; mixed",
        "int4@32,int4@32; int8; 300,299; 7; planes", "int8@32,int8@32; int8; 300,9; 1; planes",
        "int8@32,binary,ternary@64,int4-asym@32; int8; 96,65,40,33; 1; mixed",
        "int8@32,binary,ternary@64,int4-asym@32; int8; 96,65,40,33; 2; mixed",
        "ternary,binary,int4@32; int8; 9,5,1; 1; planes", "ternary,ternary; f32; 200,37; 1; planes",
        "int8@32,ternary; int8,f32; 260,40; 1; planes", "binary,binary; binary; 300,9; 2; planes"})
    public void productsOfOneInputMatchEachProductAlone(String specs, String acts, String rowList, int batch,
                                                        String layouts) {
        Random rnd = new Random(specs.hashCode() + 31L * batch);
        int cols = 1024; // with the largest rows, past the size at which a job is split over the threads
        String[] spec = specs.split(",");
        String[] act = acts.split(",");
        String[] rows = rowList.split(",");
        Weights[] ws = new Weights[spec.length];
        Buffer[] ys = new Buffer[spec.length];
        for (int i = 0; i < spec.length; i++) {
            int n = Integer.parseInt(rows[i]);
            EncodedTensor t = Quantizer.quantize("w" + i, new long[] {n, cols}, TestTensors.gaussian(rnd, n * cols,
                    0.1f), QuantSpec.parse(spec[i]), hint(act[Math.min(i, act.length - 1)]));
            boolean packed = layouts.equals("packed") || layouts.equals("mixed") && i % 2 == 1;
            ws[i] = fast.upload(placed(packed && io.bitplane.format.PackedCodes.supports(t.spec().encoding())
                    ? io.bitplane.format.PackedCodes.relayout(t) : t, 3 * i));
            ys[i] = fast.allocate(batch * n);
        }
        float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
        Buffer xb = fast.allocate(x.length);
        fast.write(x, 0, xb, 0, x.length);
        fast.matmuls(ws, xb, ys, batch);
        for (int i = 0; i < ws.length; i++) {
            int n = (int) ws[i].spec().rows();
            Buffer alone = fast.allocate(batch * n);
            fast.matmul(ws[i], xb, alone, batch);
            float[] expected = new float[batch * n];
            fast.read(alone, 0, expected, 0, expected.length);
            float[] actual = new float[batch * n];
            fast.read(ys[i], 0, actual, 0, actual.length);
            assertArrayEquals(expected, actual, "product " + i + " (" + spec[i] + ")");
        }
    }

    @Test
    public void productsOfOneInputRefuseMismatchedShapes() {
        Weights a = fast.upload(placed(Quantizer.quantize("a", new long[] {4, 64}, new float[256],
                QuantSpec.parse("ternary"), ActivationHint.INT8), 0));
        Weights b = fast.upload(placed(Quantizer.quantize("b", new long[] {4, 32}, new float[128],
                QuantSpec.parse("ternary"), ActivationHint.INT8), 0));
        Buffer x = fast.allocate(64);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> fast.matmuls(new Weights[] {a, b}, x, new Buffer[] {fast.allocate(4), fast.allocate(4)}, 1));
        assertTrue(e.getMessage().contains("tensor b has 32 columns"), e.getMessage());
        e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> fast.matmuls(new Weights[] {a, a}, x, new Buffer[] {fast.allocate(4)}, 1));
        assertTrue(e.getMessage().contains("2 matrices but 1 outputs"), e.getMessage());
    }

    @Test
    public void badShapesAreRefusedBeforeAnyKernelRuns() {
        EncodedTensor t = Quantizer.quantize("w", new long[] {4, 64}, new float[256], QuantSpec.parse("int8"),
                ActivationHint.F32);
        Weights w = fast.upload(placed(t, 0));
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> fast.matmul(w, fast.allocate(64), fast.allocate(4), 2));
        assertTrue(e.getMessage().contains("too small"), e.getMessage());
    }
}
