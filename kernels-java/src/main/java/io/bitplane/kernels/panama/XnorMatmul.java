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
 * Rows of several groups (and every row where vectors are narrower than 256 bits) take scalar code: {@code
 * Long.bitCount} compiles to POPCNT, 64 products per instruction. The words between a group's first and last are a
 * plain counted loop of their own, which C2's SuperWord vectorizes: 4096x14336 from DRAM, 113-190 -> 273-383 G
 * weights/s, and 165 with -XX:-UseSuperWord (the loop had tested every word for the row's last).
 * <p>
 * Rows of one group, where vectors have 256 bits or more, go through {@link #inStreams}: {@link #STREAMS} rows at a
 * time, each from its own run of the thread's rows, so that one activation load serves them all and as many long
 * streams of weights are in flight from DRAM. On an Intel Xeon reading 27-29 GB/s, 4096x14336 from DRAM (`bitplane
 * bench --encodings binary --activations binary`): one row at a time 123-126 G weights/s; eight adjacent rows side by
 * side 170-175, four 159-163, sixteen 158-159. Adjacent rows are short streams (a row is 1.8 KB at K = 14336) that
 * began anew every pass; eight runs of rows instead, at 35-37 GB/s, 153-160 -> 163-175, and sixteen runs 185
 * (alternated with eight: 170-175); sixteen runs against eight adjacent rows, three rounds alternated: 159-166 ->
 * 185-189. AVX-512 counts bits with VPOPCNTQ; AVX2 code (-XX:UseAVX=2), whose lane-wise bit count is a sequence of
 * instructions, had kept the scalar loop (four adjacent rows had read 81-103 and eight 110 against its 113-131), but
 * in sixteen runs it reads 132-136 against the scalar loop's 97-105 (two rounds alternated, at 34-35 GB/s).
 */
final class XnorMatmul {
    private XnorMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** Whether rows of one group take {@link #inStreams} (see the class comment). */
    private static final boolean IN_STREAMS = L.vectorBitSize() >= 256;
    /** Runs of rows summed side by side in {@link #inStreams}, which is written out for this many. */
    private static final int STREAMS = 16;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.BINARY
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL;
    }

    static void rows(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y, int batch,
                     int r0, int r1) {
        if (IN_STREAMS && spec.groupsPerRow() == 1) {
            inStreams(spec, w, xBits, xScales, y, batch, r0, r1);
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
     * {@link #rows} for one group a row, rows [r0, r1) in {@link #STREAMS} runs of {@code span} rows, one row of each
     * run a pass: the words below the last whole vector in lanes, the rest as {@link #mismatches} counts them, y as
     * the one-group case of {@link #rows} forms it. A run that ends before the others reads the first run's row
     * again, its sums unused. Written out stream by stream: vectors kept in an array are objects.
     */
    private static void inStreams(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y,
                                  int batch, int r0, int r1) {
        int n = Math.toIntExact(spec.rows());
        int k = Math.toIntExact(spec.cols());
        int words = Math.toIntExact(spec.wordsPerRow());
        long scales = spec.scalesOffset();  // computed once: it walks the tensor's shape
        long rowBytes = 8L * words;
        int inLanes = L.loopBound((k - 1) >>> 6); // the last word, perhaps partial, is left to mismatches
        int from = 64 * inLanes;  // the first value mismatches counts
        int span = (r1 - r0 + STREAMS - 1) / STREAMS;
        for (int row0 = r0; row0 < r0 + span; row0++) {
            long at0 = row0 * rowBytes;
            int row1 = row0 + 1 * span;
            long at1 = row1 < r1 ? row1 * rowBytes : at0;
            int row2 = row0 + 2 * span;
            long at2 = row2 < r1 ? row2 * rowBytes : at0;
            int row3 = row0 + 3 * span;
            long at3 = row3 < r1 ? row3 * rowBytes : at0;
            int row4 = row0 + 4 * span;
            long at4 = row4 < r1 ? row4 * rowBytes : at0;
            int row5 = row0 + 5 * span;
            long at5 = row5 < r1 ? row5 * rowBytes : at0;
            int row6 = row0 + 6 * span;
            long at6 = row6 < r1 ? row6 * rowBytes : at0;
            int row7 = row0 + 7 * span;
            long at7 = row7 < r1 ? row7 * rowBytes : at0;
            int row8 = row0 + 8 * span;
            long at8 = row8 < r1 ? row8 * rowBytes : at0;
            int row9 = row0 + 9 * span;
            long at9 = row9 < r1 ? row9 * rowBytes : at0;
            int row10 = row0 + 10 * span;
            long at10 = row10 < r1 ? row10 * rowBytes : at0;
            int row11 = row0 + 11 * span;
            long at11 = row11 < r1 ? row11 * rowBytes : at0;
            int row12 = row0 + 12 * span;
            long at12 = row12 < r1 ? row12 * rowBytes : at0;
            int row13 = row0 + 13 * span;
            long at13 = row13 < r1 ? row13 * rowBytes : at0;
            int row14 = row0 + 14 * span;
            long at14 = row14 < r1 ? row14 * rowBytes : at0;
            int row15 = row0 + 15 * span;
            long at15 = row15 < r1 ? row15 * rowBytes : at0;
            for (int t = 0; t < batch; t++) {
                int xo = t * words;
                LongVector sum0 = LongVector.zero(L);
                LongVector sum1 = LongVector.zero(L);
                LongVector sum2 = LongVector.zero(L);
                LongVector sum3 = LongVector.zero(L);
                LongVector sum4 = LongVector.zero(L);
                LongVector sum5 = LongVector.zero(L);
                LongVector sum6 = LongVector.zero(L);
                LongVector sum7 = LongVector.zero(L);
                LongVector sum8 = LongVector.zero(L);
                LongVector sum9 = LongVector.zero(L);
                LongVector sum10 = LongVector.zero(L);
                LongVector sum11 = LongVector.zero(L);
                LongVector sum12 = LongVector.zero(L);
                LongVector sum13 = LongVector.zero(L);
                LongVector sum14 = LongVector.zero(L);
                LongVector sum15 = LongVector.zero(L);
                for (int i = 0; i < inLanes; i += L.length()) {
                    LongVector x = LongVector.fromArray(L, xBits, xo + i);
                    long word = 8L * i;
                    sum0 = sum0.add(LongVector.fromMemorySegment(L, w, at0 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum1 = sum1.add(LongVector.fromMemorySegment(L, w, at1 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum2 = sum2.add(LongVector.fromMemorySegment(L, w, at2 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum3 = sum3.add(LongVector.fromMemorySegment(L, w, at3 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum4 = sum4.add(LongVector.fromMemorySegment(L, w, at4 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum5 = sum5.add(LongVector.fromMemorySegment(L, w, at5 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum6 = sum6.add(LongVector.fromMemorySegment(L, w, at6 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum7 = sum7.add(LongVector.fromMemorySegment(L, w, at7 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum8 = sum8.add(LongVector.fromMemorySegment(L, w, at8 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum9 = sum9.add(LongVector.fromMemorySegment(L, w, at9 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum10 = sum10.add(LongVector.fromMemorySegment(L, w, at10 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum11 = sum11.add(LongVector.fromMemorySegment(L, w, at11 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum12 = sum12.add(LongVector.fromMemorySegment(L, w, at12 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum13 = sum13.add(LongVector.fromMemorySegment(L, w, at13 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum14 = sum14.add(LongVector.fromMemorySegment(L, w, at14 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                    sum15 = sum15.add(LongVector.fromMemorySegment(L, w, at15 + word, LE)
                            .lanewise(VectorOperators.XOR, x).lanewise(VectorOperators.BIT_COUNT));
                }
                int yo = t * n;
                float xs = xScales[t];
                y[yo + row0] = result(w, at0, xBits, xo, from, k, sum0.reduceLanes(VectorOperators.ADD),
                        scales + 2L * row0, xs);
                if (row1 < r1) {
                    y[yo + row1] = result(w, at1, xBits, xo, from, k,
                            sum1.reduceLanes(VectorOperators.ADD), scales + 2L * row1, xs);
                }
                if (row2 < r1) {
                    y[yo + row2] = result(w, at2, xBits, xo, from, k,
                            sum2.reduceLanes(VectorOperators.ADD), scales + 2L * row2, xs);
                }
                if (row3 < r1) {
                    y[yo + row3] = result(w, at3, xBits, xo, from, k,
                            sum3.reduceLanes(VectorOperators.ADD), scales + 2L * row3, xs);
                }
                if (row4 < r1) {
                    y[yo + row4] = result(w, at4, xBits, xo, from, k,
                            sum4.reduceLanes(VectorOperators.ADD), scales + 2L * row4, xs);
                }
                if (row5 < r1) {
                    y[yo + row5] = result(w, at5, xBits, xo, from, k,
                            sum5.reduceLanes(VectorOperators.ADD), scales + 2L * row5, xs);
                }
                if (row6 < r1) {
                    y[yo + row6] = result(w, at6, xBits, xo, from, k,
                            sum6.reduceLanes(VectorOperators.ADD), scales + 2L * row6, xs);
                }
                if (row7 < r1) {
                    y[yo + row7] = result(w, at7, xBits, xo, from, k,
                            sum7.reduceLanes(VectorOperators.ADD), scales + 2L * row7, xs);
                }
                if (row8 < r1) {
                    y[yo + row8] = result(w, at8, xBits, xo, from, k,
                            sum8.reduceLanes(VectorOperators.ADD), scales + 2L * row8, xs);
                }
                if (row9 < r1) {
                    y[yo + row9] = result(w, at9, xBits, xo, from, k,
                            sum9.reduceLanes(VectorOperators.ADD), scales + 2L * row9, xs);
                }
                if (row10 < r1) {
                    y[yo + row10] = result(w, at10, xBits, xo, from, k,
                            sum10.reduceLanes(VectorOperators.ADD), scales + 2L * row10, xs);
                }
                if (row11 < r1) {
                    y[yo + row11] = result(w, at11, xBits, xo, from, k,
                            sum11.reduceLanes(VectorOperators.ADD), scales + 2L * row11, xs);
                }
                if (row12 < r1) {
                    y[yo + row12] = result(w, at12, xBits, xo, from, k,
                            sum12.reduceLanes(VectorOperators.ADD), scales + 2L * row12, xs);
                }
                if (row13 < r1) {
                    y[yo + row13] = result(w, at13, xBits, xo, from, k,
                            sum13.reduceLanes(VectorOperators.ADD), scales + 2L * row13, xs);
                }
                if (row14 < r1) {
                    y[yo + row14] = result(w, at14, xBits, xo, from, k,
                            sum14.reduceLanes(VectorOperators.ADD), scales + 2L * row14, xs);
                }
                if (row15 < r1) {
                    y[yo + row15] = result(w, at15, xBits, xo, from, k,
                            sum15.reduceLanes(VectorOperators.ADD), scales + 2L * row15, xs);
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
