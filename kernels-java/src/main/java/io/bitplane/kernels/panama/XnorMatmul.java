package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;

import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * BINARY weights x binary activations (XNOR-Net): products of signs are XNOR, sums of them popcounts.
 *
 * <pre>
 * W: plane 0 of [N][Wd] u64 words (Wd = ceil(K / 64)), bit k%64 of word k/64 set where w_k &lt; 0 (FORMAT.md 4);
 *    f16 scales at scalesOffset + 2*(n*groups + g)
 * x: [batch][Wd] u64 sign words, the same bit order (set where x_k &lt; 0), and one scale per token (mean |x|)
 * y[b][n] = xscale[b] * sum_g wscale[n][g] * (len_g - 2 popcount(w XOR x over group g))
 * </pre>
 * A group is a run of words, its first and last masked where it starts or ends inside one (groups of 32, say,
 * or bits past K). The sum over groups is in group order, as the reference's, so results are bit-identical.
 * It is scalar code: {@code Long.bitCount} compiles to POPCNT, 64 products per instruction, which the Vector API's
 * lane-wise bit count does not beat on AVX2. The words between a group's first and last are a plain counted loop
 * of their own, which C2's SuperWord vectorizes: 4096x14336 from DRAM, 113-190 -> 273-383 G weights/s, and 165
 * with -XX:-UseSuperWord (the loop had tested every word for the row's last).
 * <p>
 * Rows of one group, where vectors have 512 bits (AVX-512, whose VPOPCNTQ the lane-wise bit count compiles to), go
 * eight at a time through {@link #eightRows}: one activation load serves eight rows, and eight streams of weights
 * are in flight from DRAM where the one-row loop has one. On an Intel Xeon reading 27-29 GB/s, 4096x14336 from DRAM
 * (`bitplane bench --encodings binary --activations binary`): 123-125 -> 170-175 G weights/s (76-77% of the
 * roofline); one row at a time through the same vector loop read 125-126, four 159-163, sixteen 158-159. With AVX2
 * code (-XX:UseAVX=2) four rows read 81-103 and eight 110, against the scalar loop's 113-131 (though four were
 * faster from the L3: JMH, 4,831 against 3,851 calls/s), so AVX2 keeps the scalar loop.
 */
final class XnorMatmul {
    private XnorMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** Whether rows of one group take {@link #eightRows} (see the class comment). */
    private static final boolean EIGHT_ROWS = L.vectorBitSize() >= 512;
    private static final int ROWS_PER_PASS = 8;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.BINARY
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL;
    }

    static void rows(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y, int batch,
                     int r0, int r1) {
        if (EIGHT_ROWS && spec.groupsPerRow() == 1) {
            eightRows(spec, w, xBits, xScales, y, batch, r0, r1);
            return;
        }
        int n = Math.toIntExact(spec.rows());
        int k = Math.toIntExact(spec.cols());
        int words = Math.toIntExact(spec.wordsPerRow());
        int groups = Math.toIntExact(spec.groupsPerRow());
        int group = Math.toIntExact(spec.effectiveGroupSize());
        long scales = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long row = 8L * r * words;
            for (int b = 0; b < batch; b++) {
                int xo = b * words;
                float sum = 0;
                for (int g = 0; g < groups; g++) {
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    int mismatches = mismatches(w, row, xBits, xo, start, end);
                    float scale = Halfs.f16ToFloat(w.get(SHORT, scales + 2L * ((long) r * groups + g)));
                    sum += scale * (end - start - 2 * mismatches);
                }
                y[b * n + r] = sum * xScales[b];
            }
        }
    }

    /**
     * The popcount of weight XOR activation over values [start, end) of a row: the words between whole, the first
     * word from bit start % 64 and the last below bit end % 64 (all of it where that is 0), so a group may start or
     * end inside a word and the bits past K count nothing.
     */
    private static int mismatches(MemorySegment w, long row, long[] xBits, int xo, int start, int end) {
        int first = start >>> 6;
        int last = (end - 1) >>> 6;
        long firstMask = -1L << (start & 63);
        long lastMask = (end & 63) == 0 ? -1L : (1L << (end & 63)) - 1;
        long v = w.get(LONG, row + 8L * first) ^ xBits[xo + first];
        if (first == last) {
            return Long.bitCount(v & firstMask & lastMask);
        }
        int count = Long.bitCount(v & firstMask);
        for (int word = first + 1; word < last; word++) {
            count += Long.bitCount(w.get(LONG, row + 8L * word) ^ xBits[xo + word]);
        }
        return count + Long.bitCount((w.get(LONG, row + 8L * last) ^ xBits[xo + last]) & lastMask);
    }

    /**
     * {@link #rows} for one group a row, eight rows at a time (the last pass's missing rows read its first again,
     * their sums unused): the words below the last whole vector in lanes, the rest as {@link #mismatches} counts
     * them, y as the one-group case of {@link #rows} forms it. The rows' results are written out one by one: the
     * lane sums put in an array and a loop over it read 159-170 G weights/s against 174-178.
     */
    private static void eightRows(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y,
                                 int batch, int r0, int r1) {
        int n = Math.toIntExact(spec.rows());
        int k = Math.toIntExact(spec.cols());
        int words = Math.toIntExact(spec.wordsPerRow());
        long scales = spec.scalesOffset();  // computed once: it walks the tensor's shape
        long rowBytes = 8L * words;
        int inLanes = L.loopBound((k - 1) >>> 6); // the last word, perhaps partial, is left to mismatches
        int from = 64 * inLanes;  // the first value mismatches counts
        for (int r = r0; r < r1; r += ROWS_PER_PASS) {
            int count = Math.min(ROWS_PER_PASS, r1 - r);
            long rowA = r * rowBytes;
            long rowB = count > 1 ? rowA + rowBytes : rowA;
            long rowC = count > 2 ? rowA + 2 * rowBytes : rowA;
            long rowD = count > 3 ? rowA + 3 * rowBytes : rowA;
            long rowE = count > 4 ? rowA + 4 * rowBytes : rowA;
            long rowF = count > 5 ? rowA + 5 * rowBytes : rowA;
            long rowG = count > 6 ? rowA + 6 * rowBytes : rowA;
            long rowH = count > 7 ? rowA + 7 * rowBytes : rowA;
            for (int t = 0; t < batch; t++) {
                int xo = t * words;
                LongVector a = LongVector.zero(L);
                LongVector b = LongVector.zero(L);
                LongVector c = LongVector.zero(L);
                LongVector d = LongVector.zero(L);
                LongVector e = LongVector.zero(L);
                LongVector f = LongVector.zero(L);
                LongVector g = LongVector.zero(L);
                LongVector h = LongVector.zero(L);
                for (int i = 0; i < inLanes; i += L.length()) {
                    LongVector x = LongVector.fromArray(L, xBits, xo + i);
                    long at = 8L * i;
                    a = a.add(LongVector.fromMemorySegment(L, w, rowA + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    b = b.add(LongVector.fromMemorySegment(L, w, rowB + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    c = c.add(LongVector.fromMemorySegment(L, w, rowC + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    d = d.add(LongVector.fromMemorySegment(L, w, rowD + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    e = e.add(LongVector.fromMemorySegment(L, w, rowE + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    f = f.add(LongVector.fromMemorySegment(L, w, rowF + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    g = g.add(LongVector.fromMemorySegment(L, w, rowG + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    h = h.add(LongVector.fromMemorySegment(L, w, rowH + at, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                }
                int yo = t * n + r;
                long scaleAt = scales + 2L * r;
                float xs = xScales[t];
                y[yo] = result(w, rowA, xBits, xo, from, k, a.reduceLanes(VectorOperators.ADD), scaleAt, xs);
                if (count > 1) {
                    y[yo + 1] = result(w, rowB, xBits, xo, from, k,
                            b.reduceLanes(VectorOperators.ADD), scaleAt + 2, xs);
                }
                if (count > 2) {
                    y[yo + 2] = result(w, rowC, xBits, xo, from, k,
                            c.reduceLanes(VectorOperators.ADD), scaleAt + 4, xs);
                }
                if (count > 3) {
                    y[yo + 3] = result(w, rowD, xBits, xo, from, k,
                            d.reduceLanes(VectorOperators.ADD), scaleAt + 6, xs);
                }
                if (count > 4) {
                    y[yo + 4] = result(w, rowE, xBits, xo, from, k,
                            e.reduceLanes(VectorOperators.ADD), scaleAt + 8, xs);
                }
                if (count > 5) {
                    y[yo + 5] = result(w, rowF, xBits, xo, from, k,
                            f.reduceLanes(VectorOperators.ADD), scaleAt + 10, xs);
                }
                if (count > 6) {
                    y[yo + 6] = result(w, rowG, xBits, xo, from, k,
                            g.reduceLanes(VectorOperators.ADD), scaleAt + 12, xs);
                }
                if (count > 7) {
                    y[yo + 7] = result(w, rowH, xBits, xo, from, k,
                            h.reduceLanes(VectorOperators.ADD), scaleAt + 14, xs);
                }
            }
        }
    }

    /**
     * One row's y for one token in one group: its mismatches below value {@code from} counted in lanes ({@code
     * below}), the rest by {@link #mismatches}; formed as {@link #rows} forms one group's, its f16 scale at byte
     * {@code scaleAt}.
     */
    private static float result(MemorySegment w, long row, long[] xBits, int xo, int from, int k, long below,
                                long scaleAt, float xScale) {
        int mismatches = (int) below + mismatches(w, row, xBits, xo, from, k);
        float scale = Halfs.f16ToFloat(w.get(SHORT, scaleAt));
        float sum = 0;
        sum += scale * (k - 2 * mismatches);
        return sum * xScale;
    }
}
