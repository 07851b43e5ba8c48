package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * BINARY weights x binary activations (XNOR-Net) with a scale per group of values, on tiles of rows whose 32-bit
 * words go side by side, one row per int lane, so that each group's popcounts, its conversion, scale and term are
 * formed for a whole tile of rows at once. Row by row ({@link XnorMatmul#rows}) every group cost a popcount of one or
 * a few words, a scale converted from f16 and an add that waits on the one before: 4096 x 14336 in groups of 64, 2
 * threads, 33-42 G weights/s there against 203-252 here. One scale a row is one group: 228-338 here against 188-226
 * for the rows side by side in vector lanes that served it (AVX2 code 136-244 against 100-135).
 *
 * <pre>
 * Tiles (native memory, written once by {@link #repack}); T = {@link #ROWS} rows per tile (int lanes of the
 * preferred vector: 16 on AVX-512, 8 on AVX2), H = ceil(K / 32) half-words per row:
 *   at ((t H + h) T + j) * 4: bits 32h .. 32h + 31 of row T t + j (the plane's u64 words in halves, low half first;
 *   bit i%32 set where w_i &lt; 0). Rows past N are 0.
 * Scales: the file's f16, at ((t G + g) T + j) * 2: row T t + j's scale of group g, G groups a row; widened in the
 *   lanes as HalfMatmul widens F16 weights (exactly), so a tensor with an infinite or NaN scale is not tiled.
 * x: the token's u64 sign words (bit i%64 of word i/64 set where x_i &lt; 0), read as halves.
 * Per tile, token and group g of values [start, end), lane by lane: m = sum over the halves it touches of
 *   popcount(half XOR x half), the first and last masked where the group starts or ends inside them (so bits past
 *   K, in the weights or in x, count nothing); then as the oracle: sum = sum + s_g (float) (len_g - 2 m), in group
 *   order from 0, and y = sum x xscale. A group shorter than a half reads its half again.
 * </pre>
 */
final class XnorTileMatmul {
    private XnorTileMatmul() {
    }

    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F = VectorSpecies.of(float.class, I.vectorShape());
    /** A tile's f16 scales of one group: a vector of half I's width. */
    private static final VectorSpecies<Short> H =
            VectorSpecies.of(short.class, VectorShape.forBitSize(I.vectorBitSize() / 2));
    /** Rows per tile: one per int lane. */
    static final int ROWS = I.length();
    /** Values per half-word, the tiles' unit. */
    private static final int HALF_BITS = 32;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    /** The F16 exponent field: all ones in infinities and NaNs, which the widening below does not give. */
    private static final int F16_EXPONENT = 0x7C00;
    /** Where h &lt;&lt; 13 holds the sign (bit 31) and the exponent and mantissa (bits 13-27) of a half. */
    private static final int F16_BITS = 0x8FFFE000;
    private static final float TWO_TO_112 = 0x1p112f;

    /**
     * BINARY x binary activations, one scale a row or in groups, where vectors have 256 bits or more (at 128 bits
     * the tiles would be four rows, and {@link XnorMatmul}'s rows keep them).
     */
    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.BINARY
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL && spec.rank() == 2 && I.vectorBitSize() >= 256
                && spec.cols() <= Integer.MAX_VALUE / 2;
    }

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    private static int halves(TensorSpec spec) {
        return (int) ((spec.cols() + HALF_BITS - 1) / HALF_BITS);
    }

    /** Half-words and tile-ordered scales of a BINARY tensor. */
    record Tiles(MemorySegment halves, MemorySegment scales) {
    }

    /**
     * One pass over the tensor, its rows split over {@code pool}, into new native memory from {@code memory}; null
     * if a scale is infinite or NaN (the rows' kernel then takes the tensor, as the oracle sums it).
     */
    static Tiles repack(TensorSpec spec, MemorySegment data, WorkerPool pool, WeightMemory memory) {
        long scales = spec.scalesOffset();
        for (long i = 0; i < spec.rows() * spec.groupsPerRow(); i++) {
            if ((data.get(U16, scales + 2 * i) & F16_EXPONENT) == F16_EXPONENT) {
                return null;
            }
        }
        long tiles = tiles(spec);
        Tiles t = new Tiles(memory.allocate(tiles * halves(spec) * ROWS * 4),
                memory.allocate(tiles * spec.groupsPerRow() * ROWS * 2));
        pool.run((int) spec.rows(), (r0, r1) -> repackRows(spec, data, t, r0, r1));
        return t;
    }

    private static void repackRows(TensorSpec spec, MemorySegment data, Tiles t, int r0, int r1) {
        int halves = halves(spec);
        int groups = (int) spec.groupsPerRow();
        long words = spec.wordsPerRow();
        long scales = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long tileAt = (long) (r / ROWS) * halves * ROWS;
            int lane = r % ROWS;
            for (int h = 0; h < halves; h++) {
                long word = data.get(U64, 8 * ((long) r * words + h / 2));
                int half = (int) (word >>> (HALF_BITS * (h % 2)));
                t.halves().set(U32, 4 * (tileAt + (long) h * ROWS + lane), half);
            }
            for (int g = 0; g < groups; g++) {
                t.scales().set(U16, 2 * (((long) (r / ROWS) * groups + g) * ROWS + lane),
                        data.get(U16, scales + 2 * ((long) r * groups + g)));
            }
        }
    }

    /** Per worker thread: a last tile's results, of which only the rows below N are stored. */
    private static final ThreadLocal<float[]> TILE_RESULTS = ThreadLocal.withInitial(() -> new float[ROWS]);

    /**
     * Tiles [tile0, tile1) for every token: token b's sign words at {@code xBits[b * words ..]}, its scale at
     * {@code xScales[b]}; results at {@code y[b * N + row]}.
     */
    static void tiles(TensorSpec spec, Tiles w, long[] xBits, float[] xScales, float[] y, int batch, int tile0,
                      int tile1) {
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        int halves = halves(spec);
        int words = (int) spec.wordsPerRow();
        int groups = (int) spec.groupsPerRow();
        int group = (int) spec.effectiveGroupSize();
        MemorySegment bits = w.halves();
        MemorySegment scales = w.scales();
        for (int tile = tile0; tile < tile1; tile++) {
            long tileAt = (long) tile * halves * ROWS * 4;
            long scalesAt = (long) tile * groups * ROWS * 2;
            for (int b = 0; b < batch; b++) {
                int xo = b * words;
                FloatVector sum = FloatVector.zero(F);
                for (int g = 0; g < groups; g++) {
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    int h0 = start / HALF_BITS;
                    int h1 = (end - 1) / HALF_BITS;
                    int firstMask = -1 << (start & (HALF_BITS - 1));
                    int lastMask = (end & (HALF_BITS - 1)) == 0 ? -1 : (1 << (end & (HALF_BITS - 1))) - 1;
                    IntVector mismatches = IntVector.zero(I);
                    for (int h = h0; h <= h1; h++) {
                        int x = (int) (xBits[xo + (h >>> 1)] >>> (HALF_BITS * (h & 1)));
                        IntVector v = IntVector.fromMemorySegment(I, bits, tileAt + (long) h * ROWS * 4, LE)
                                .lanewise(VectorOperators.XOR, x);
                        int mask = (h == h0 ? firstMask : -1) & (h == h1 ? lastMask : -1);
                        if (mask != -1) {  // the group starts or ends inside this half (or K does)
                            v = v.and(mask);
                        }
                        mismatches = mismatches.add(v.lanewise(VectorOperators.BIT_COUNT));
                    }
                    int len = end - start;
                    // len - 2 m as an int, converted once: the oracle's (float) (end - start - 2 * mismatches)
                    FloatVector agree = (FloatVector) mismatches.mul(-2).add(len).convert(VectorOperators.I2F, 0);
                    IntVector half = (IntVector) ShortVector.fromMemorySegment(H, scales,
                            scalesAt + (long) g * ROWS * 2, LE).convertShape(VectorOperators.S2I, I, 0);
                    FloatVector scale = half.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats()
                            .mul(TWO_TO_112);
                    sum = sum.add(scale.mul(agree));
                }
                int row0 = tile * ROWS;
                if (row0 + ROWS <= n) {
                    sum.mul(xScales[b]).intoArray(y, b * n + row0);
                } else {  // a last tile past the rows
                    float[] out = TILE_RESULTS.get();
                    sum.mul(xScales[b]).intoArray(out, 0);
                    System.arraycopy(out, 0, y, b * n + row0, n - row0);
                }
            }
        }
    }
}
