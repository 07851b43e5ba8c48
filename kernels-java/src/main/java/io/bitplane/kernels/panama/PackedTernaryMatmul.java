package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * TERNARY in packed codes (layout 1) times INT8 activations in 16-bit lanes, for machines without vpermw (AVX2),
 * where {@link SignTileMatmul}'s lookups would be emulated. AVX2 has no byte multiply and the Vector API no
 * {@code maddubs}, and byte shifts are emulated, but 16-bit lanes shift and multiply natively. So 32 bytes of a row
 * are read as 16 u16 lanes, each holding 8 fields of 2 bits, and each field vector (one field of every lane,
 * shifted down and masked) is multiplied with 16 activation codes that were put in the matching order once per
 * token. (INT4 and BINARY took this kernel too, until tiles of rows served them 1.3-3x faster: {@link
 * Int4NibbleTileMatmul}, {@link ByteTableMatmul}. For ternary, neither tile layout does fewer operations per value.)
 *
 * <pre>
 * Chunk: 32 bytes of a row, lanes s = 0..15 (bytes 2s, 2s + 1), 128 values (PackedCodes):
 *   bits 2i .. 2i+1 of lane s: value 32i + 2s;  bits 8+2i .. 9+2i: value 32i + 2s + 1
 * Field vector j = 2i + h of a chunk: shift 8h + 2i, values 32i + 2s + h (a pair of vectors covers 32 consecutive
 *   values).
 * xp (per token, int16 codes, zero past K): xp[128 c + 16 j + s] = code of the value that field j of lane s holds.
 * Products: field f (0 .. 3) times code q (|q| <= 127), summed lane by lane in int16 and moved into int32 lanes
 *   before a lane could overflow; per group one exact integer F_g = sum f q.
 * Groups are whole slices of 32 values (a pair of field vectors); a chunk two groups share is summed slice by slice
 *   for each (groups of 32 to 96 values pay a horizontal sum per chunk and group; they had taken the scalar kernel).
 * As the scalar oracle forms it, with X_g the group's sum of codes (field = code + 1):
 *   acc_g = F_g - X_g;  y = s_x * sum over g in order of (s_g acc_g + 0f)
 * </pre>
 * The integer sums are exact and the float steps are the oracle's, so results equal it bit for bit, and a token's
 * result does not depend on its batch. The shifts are written out: C2 compiled a loop over a table of shifts to code
 * half as fast.
 */
final class PackedTernaryMatmul {
    private PackedTernaryMatmul() {
    }

    /** One 32-byte chunk per vector: 256-bit lanes whatever the preferred width, so the field order is fixed. */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Values per chunk (PackedCodes' block of ternary codes). */
    private static final int CHUNK = 128;
    /** Values per slice: a pair of field vectors (i of a chunk: shifts 2i and 8 + 2i), the group granularity. */
    private static final int SLICE = 32;

    /** Packed TERNARY with INT8 activations in groups of whole slices, on a machine with 256-bit integer vectors
     * (narrower ones would emulate every 256-bit operation). */
    static boolean supports(TensorSpec spec) {
        long g = spec.groupSize();
        return spec.encoding() == Encoding.TERNARY && spec.activations() == ActivationHint.INT8
                && spec.layout() == TensorSpec.LAYOUT_PACKED && ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 256
                && (g == 0 || g % SLICE == 0);
    }

    /** Chunks per row. */
    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + CHUNK - 1) / CHUNK);
    }

    /** Length of one token's permuted activations. */
    static int paddedK(TensorSpec spec) {
        return chunks(spec) * CHUNK;
    }

    /**
     * One token's INT8 codes {@code q[q0 .. q0 + K)} into {@code xp[x0 .. x0 + paddedK)} in field-vector order, and
     * its group sums X_g into {@code groupSums[s0 ..]}.
     */
    static void prepare(TensorSpec spec, short[] q, int q0, short[] xp, int x0, int[] groupSums, int s0) {
        int k = (int) spec.cols();
        java.util.Arrays.fill(xp, x0, x0 + paddedK(spec), (short) 0);
        for (int i = 0; i < k; i++) {
            int j = i % CHUNK;
            // field vector 2 (j / 32) + j % 2, lane (j % 32) / 2
            xp[x0 + i - j + 16 * (2 * (j / 32) + j % 2) + (j % 32) / 2] = q[q0 + i];
        }
        int group = (int) spec.effectiveGroupSize();
        int groups = (int) spec.groupsPerRow();
        for (int g = 0; g < groups; g++) {
            int sum = 0;
            for (int i = g * group; i < Math.min(k, (g + 1) * group); i++) {
                sum += q[q0 + i];
            }
            groupSums[s0 + g] = sum;
        }
    }

    /** Rows worked together: their in-order sums of group terms are independent add chains that overlap. */
    private static final int ROW_BLOCK = 4;

    /**
     * Per worker thread, grown as needed: a row's field sums, and for each row of a block its scales and group terms
     * (row j at {@code j * groups}).
     */
    private static final class RowScratch {
        int[] fieldSums = new int[0];
        float[] scales = new float[0];
        float[] terms = new float[0];

        RowScratch fit(int groups) {
            if (fieldSums.length < groups) {
                fieldSums = new int[groups];
                scales = new float[ROW_BLOCK * groups];
                terms = new float[ROW_BLOCK * groups];
            }
            return this;
        }
    }

    private static final ThreadLocal<RowScratch> ROW_SCRATCH = ThreadLocal.withInitial(RowScratch::new);

    /**
     * Rows [r0, r1) for every token. {@code xp}, {@code groupSums}: {@link #prepare}d per token (stride
     * {@link #paddedK}, groups per row). Each row's scales are converted once for all tokens. Rows go in blocks of
     * {@link #ROW_BLOCK}: a row's terms are added in group order, each add waiting for the one before, and four
     * rows' chains side by side overlap (INT8 in groups of 32, when this kernel took it, 32000 x 2048, one thread:
     * 4.43-4.83 ms against 5.00-5.11 when each row's chain ran alone; INT4 g32 4096 x 14336: 4.57-6.31 against
     * 5.08-5.51).
     */
    static void rows(TensorSpec spec, MemorySegment w, short[] xp, int[] groupSums, float[] tokenScales, float[] y,
                     int batch, int r0, int r1) {
        int n = (int) spec.rows();
        int groups = (int) spec.groupsPerRow();
        int paddedK = paddedK(spec);
        long rowBytes = PackedCodes.rowBytes(spec);
        int group = (int) spec.effectiveGroupSize();
        long scales = spec.scalesOffset();  // computed once: it is not free (it walks the tensor's shape)
        RowScratch s = ROW_SCRATCH.get().fit(groups);
        for (int rb = r0; rb < r1; rb += ROW_BLOCK) {
            int rows = Math.min(ROW_BLOCK, r1 - rb);
            for (int j = 0; j < rows; j++) {
                for (int g = 0; g < groups; g++) {
                    long gi = (long) (rb + j) * groups + g;
                    s.scales[j * groups + g] = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2 * gi));
                }
            }
            for (int t = 0; t < batch; t++) {
                int xo = t * paddedK;
                for (int j = 0; j < rows; j++) {
                    long row = (rb + j) * rowBytes;
                    for (int g = 0; g < groups; g++) {  // the last group runs on over the zero padding
                        s.fieldSums[g] = groupSum(w, row, g * group, g == groups - 1 ? paddedK : (g + 1) * group,
                                xp, xo);
                    }
                    if (groups == 1) {  // one scale per row: the sum is the one term
                        y[t * n + rb + j] = (0f + term(s, j, s.fieldSums[0], groupSums[t])) * tokenScales[t];
                    } else {
                        terms(groups, s, j * groups, groupSums, t * groups);
                    }
                }
                if (groups > 1) {
                    sumTerms(s.terms, groups, rows, tokenScales[t], y, t * n + rb);
                }
            }
        }
    }

    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;

    /** One group's term {@code s_g acc_g + 0f}, acc_g = F_g - X_g: field sum F_g, activation sum X_g, scale at at. */
    private static float term(RowScratch s, int at, int fieldSum, int x) {
        return s.scales[at] * (fieldSum - x) + 0f;
    }

    /**
     * The oracle's group terms of one row into {@code s.terms[at + g]} (its scales at {@code at} too), formed 8
     * groups at a time: the same IEEE operations lane by lane as {@link #term}.
     */
    private static void terms(int groups, RowScratch s, int at, int[] groupSums, int s0) {
        int g = 0;
        for (; g <= groups - I.length(); g += I.length()) {
            IntVector f = IntVector.fromArray(I, s.fieldSums, g);
            IntVector x = IntVector.fromArray(I, groupSums, s0 + g);
            FloatVector acc = (FloatVector) f.sub(x).convert(VectorOperators.I2F, 0);
            acc.mul(FloatVector.fromArray(F8, s.scales, at + g)).add(0f).intoArray(s.terms, at + g);
        }
        for (; g < groups; g++) {
            s.terms[at + g] = term(s, at + g, s.fieldSums[g], groupSums[s0 + g]);
        }
    }

    /**
     * {@code y[y0 + j] = (sum of row j's terms in group order, from 0) * tokenScale} for the block's rows: one add
     * chain per row, the chains side by side.
     */
    private static void sumTerms(float[] terms, int groups, int rows, float tokenScale, float[] y, int y0) {
        if (rows == ROW_BLOCK) {
            float s0 = 0;
            float s1 = 0;
            float s2 = 0;
            float s3 = 0;
            for (int g = 0; g < groups; g++) {
                s0 += terms[g];
                s1 += terms[groups + g];
                s2 += terms[2 * groups + g];
                s3 += terms[3 * groups + g];
            }
            y[y0] = s0 * tokenScale;
            y[y0 + 1] = s1 * tokenScale;
            y[y0 + 2] = s2 * tokenScale;
            y[y0 + 3] = s3 * tokenScale;
            return;
        }
        for (int j = 0; j < rows; j++) {
            float sum = 0;
            for (int g = 0; g < groups; g++) {
                sum += terms[j * groups + g];
            }
            y[y0 + j] = sum * tokenScale;
        }
    }

    // Each group is summed in runs short enough that no int16 lane can overflow, in a small method that returns an
    // int: four int16 sums (four add chains side by side; two chains ran 15-20% slower), widened into int32 lanes
    // after each run. Vectors never cross a call: where C2 declined to inline a helper that took vectors (too large
    // for a cold call site, or past NodeCountInliningCutoff in a big method), the vectors were boxed and the kernel
    // ran 2 to 8x slower. A lane sum: an int16 pair (lo, hi) read as one int lane is lo = (v << 16) >> 16 and
    // hi = v >> 16.

    /**
     * F over values [v0, v1) of a row (multiples of a slice): whole chunks by {@link #ternarySum}, slices of a chunk
     * a group shares with its neighbour by {@link #ternarySlices} (groups of 32 or 64 values: only those).
     */
    private static int groupSum(MemorySegment w, long row, int v0, int v1, short[] xp, int xo) {
        int c0 = v0 / CHUNK;
        int i0 = v0 % CHUNK / SLICE;
        int c1 = v1 / CHUNK;
        int i1 = v1 % CHUNK / SLICE;
        if (c0 == c1) {
            return ternarySlices(w, row, c0, i0, i1, xp, xo);
        }
        int sum = 0;
        if (i0 > 0) {
            sum += ternarySlices(w, row, c0, i0, CHUNK / SLICE, xp, xo);
            c0++;
        }
        if (c0 < c1) {
            sum += ternarySum(w, row, c0, c1, xp, xo);
        }
        if (i1 > 0) {
            sum += ternarySlices(w, row, c1, 0, i1, xp, xo);
        }
        return sum;
    }

    /** F over slices [i0, i1) of chunk c of a row (at most 8 products of 3 x 127 per lane: no run limit). */
    private static int ternarySlices(MemorySegment w, long row, int c, int i0, int i1, short[] xp, int xo) {
        ShortVector p = ShortVector.fromMemorySegment(S, w, row + 32L * c, LE);
        int x = xo + CHUNK * c;
        ShortVector a = ShortVector.zero(S);
        for (int i = i0; i < i1; i++) {
            a = a.add(p.lanewise(VectorOperators.LSHR, 2 * i).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 32 * i)))
                    .add(p.lanewise(VectorOperators.LSHR, 8 + 2 * i).and((short) 3)
                            .mul(ShortVector.fromArray(S, xp, x + 32 * i + 16)));
        }
        IntVector u = a.reinterpretAsInts();
        return u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(u.lanewise(VectorOperators.ASHR, 16))
                .reduceLanes(VectorOperators.ADD);
    }

    /** Chunks in one ternary run: 2 products of at most 3 x 127 per chunk in each int16 sum. */
    private static final int TERNARY_RUN = 32767 / (2 * 3 * 127);

    /** F over chunks [c0, c1) of a ternary row. */
    private static int ternarySum(MemorySegment w, long row, int c0, int c1, short[] xp, int xo) {
        IntVector total = IntVector.zero(I);
        for (int r0 = c0; r0 < c1; r0 += TERNARY_RUN) {
            int r1 = Math.min(c1, r0 + TERNARY_RUN);
            ShortVector a = ShortVector.zero(S);
            ShortVector b = ShortVector.zero(S);
            ShortVector c = ShortVector.zero(S);
            ShortVector d = ShortVector.zero(S);
            for (int k = r0; k < r1; k++) {
                ShortVector p = ShortVector.fromMemorySegment(S, w, row + 32L * k, LE);
                int x = xo + 128 * k;
                a = a.add(p.and((short) 3).mul(ShortVector.fromArray(S, xp, x)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 8).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 16)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 2).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 32)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 10).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 48)));
                a = a.add(p.lanewise(VectorOperators.LSHR, 4).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 64)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 12).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 80)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 6).and((short) 3).mul(ShortVector.fromArray(S, xp, x + 96)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 14).mul(ShortVector.fromArray(S, xp, x + 112)));
            }
            IntVector u = a.reinterpretAsInts();
            IntVector v = b.reinterpretAsInts();
            IntVector u2 = c.reinterpretAsInts();
            IntVector v2 = d.reinterpretAsInts();
            total = total.add(u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                    .add(u.lanewise(VectorOperators.ASHR, 16))
                    .add(v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                    .add(v.lanewise(VectorOperators.ASHR, 16))
                    .add(u2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                    .add(u2.lanewise(VectorOperators.ASHR, 16))
                    .add(v2.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                    .add(v2.lanewise(VectorOperators.ASHR, 16));
        }
        return total.reduceLanes(VectorOperators.ADD);
    }

    /** Chunks in one INT4 run: 2 products of at most 15 x 127 per chunk in each of two int16 sums. */
    private static final int INT4_RUN = 32767 / (2 * 15 * 127);
}
