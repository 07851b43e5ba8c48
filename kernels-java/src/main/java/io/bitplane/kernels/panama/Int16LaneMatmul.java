package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * Low-bit codes times INT8 activations in 16-bit lanes: TERNARY, INT4 and INT4_ASYM in packed codes (layout 1),
 * and BINARY sign planes (layout 0); INT8 values have their own kernel ({@link Int8TileMatmul}). AVX2 has no byte
 * multiply and the Vector API no {@code maddubs}, and byte shifts are emulated, but 16-bit lanes shift and multiply
 * natively. So 32 bytes of a row are read as 16 u16 lanes, each holding 16 / b fields of b bits, and each field
 * vector (one field of every lane, shifted down and masked) is multiplied with 16 activation codes that were put in
 * the matching order once per token.
 *
 * <pre>
 * Chunk: 32 bytes of a row, lanes s = 0..15 (bytes 2s, 2s + 1), V values (PackedCodes for the packed layout).
 *   TERNARY packed (b = 2, V = 128): bits 2i .. 2i+1 of lane s: value 32i + 2s;  bits 8+2i ..: value 32i + 2s + 1
 *   INT4, INT4_ASYM packed (b = 4, V = 64): bits 4i .. 4i+3: value 32i + 2s;   bits 8+4i ..: value 32i + 2s + 1
 *   BINARY plane (b = 1, V = 256): bit j of lane s: value 16s + j.  A row is ceil(K / 64) u64 words, so its last
 *     chunk may be short: it is read with a lane mask.
 * Field vector j of a chunk, numbered so that consecutive vectors cover consecutive values:
 *   packed: j = 2i + h, shift 8h + b i, values 32i + 2s + h (a pair of vectors covers 32 consecutive values)
 *   binary: j, shift j, values 16s + j
 * xp (per token, int16 codes, zero past K): xp[c V + 16 j + s] = code of the value that field j of lane s holds.
 * Products: field f (0 .. 2^b - 1) times code q (|q| <= 127), summed lane by lane in int16 and moved into int32
 *   lanes (two shifts) before a lane could overflow; per group one exact integer F_g = sum f q.
 * As the scalar oracle forms it, with X_g the group's sum of codes:
 *   acc_g = F_g - X_g (TERNARY, field = code + 1), F_g - 8 X_g (INT4), F_g (INT4_ASYM, plus m_g X_g),
 *           X_g - 2 F_g (BINARY, code = 1 - 2 bit)
 *   y = s_x * sum over g in order of (s_g acc_g + ...)
 * </pre>
 * The integer sums are exact and the float steps are the oracle's, so results equal it bit for bit, and a token's
 * result does not depend on its batch. One loop per encoding with its shifts written out: C2 compiled a shared loop
 * over a table of shifts to code half as fast.
 */
final class Int16LaneMatmul {
    private Int16LaneMatmul() {
    }

    /** One 32-byte chunk per vector: 256-bit lanes whatever the preferred width, so the field order is fixed. */
    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** Values per pair of packed field vectors, and the group granularity of the packed kernels. */
    private static final int SLICE = 32;

    /** Tensors this kernel takes: INT8 activations, groups made of whole field vectors, and a machine with 256-bit
     * integer vectors (narrower ones would emulate every 256-bit operation). */
    static boolean supports(TensorSpec spec) {
        if (spec.activations() != ActivationHint.INT8 || ShortVector.SPECIES_PREFERRED.vectorBitSize() < 256) {
            return false;
        }
        long g = spec.groupSize();
        Encoding e = spec.encoding();
        if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
            return switch (e) {
                case TERNARY -> g == 0 || g % PackedCodes.blockValues(e) == 0;
                case INT4, INT4_ASYM -> g == 0 || g == SLICE || g % (2 * SLICE) == 0;
                default -> false;
            };
        }
        if (spec.layout() != TensorSpec.LAYOUT_CANONICAL) {
            return false;
        }
        return switch (e) {
            case BINARY -> g == 0 || g % 256 == 0;
            default -> false;
        };
    }

    /** Values per chunk. */
    static int chunkValues(TensorSpec spec) {
        return switch (spec.encoding()) {
            case BINARY -> 256;
            default -> PackedCodes.blockValues(spec.encoding());
        };
    }

    /** Chunks per row (the last chunk of a binary row may be short). */
    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + chunkValues(spec) - 1) / chunkValues(spec));
    }

    /** Length of one token's permuted activations. */
    static int paddedK(TensorSpec spec) {
        return chunks(spec) * chunkValues(spec);
    }

    /**
     * One token's INT8 codes {@code q[q0 .. q0 + K)} into {@code xp[x0 .. x0 + paddedK)} in field-vector order, and
     * its group sums X_g into {@code groupSums[s0 ..]}.
     */
    static void prepare(TensorSpec spec, short[] q, int q0, short[] xp, int x0, int[] groupSums, int s0) {
        int k = (int) spec.cols();
        int v = chunkValues(spec);
        java.util.Arrays.fill(xp, x0, x0 + paddedK(spec), (short) 0);
        boolean binary = spec.encoding() == Encoding.BINARY;
        for (int i = 0; i < k; i++) {
            int c = i / v;
            int j = i % v;
            // Packed: field vector 2 (j / 32) + j % 2, lane (j % 32) / 2.
            int at = binary ? 16 * (j % 16) + j / 16 : 16 * (2 * (j / SLICE) + j % 2) + (j % SLICE) / 2;
            xp[x0 + c * v + at] = q[q0 + i];
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
     * Per worker thread, grown as needed: a row's field sums and group lanes, and for each row of a block its
     * scales, mins and group terms (row j at {@code j * groups}).
     */
    private static final class RowScratch {
        int[] fieldSums = new int[0];
        float[] scales = new float[0];
        float[] mins = new float[0];
        float[] terms = new float[0];
        int[] lanes = new int[0];

        RowScratch fit(int groups, int chunks) {
            if (fieldSums.length < groups) {
                fieldSums = new int[groups];
                scales = new float[ROW_BLOCK * groups];
                mins = new float[ROW_BLOCK * groups];
                terms = new float[ROW_BLOCK * groups];
            }
            if (lanes.length < 16 * chunks) {
                lanes = new int[16 * chunks];
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
        Encoding e = spec.encoding();
        boolean asym = e == Encoding.INT4_ASYM;
        long rowBytes = switch (e) {
            case BINARY -> spec.wordsPerRow() * 8;
            default -> PackedCodes.rowBytes(spec);
        };
        int chunks = chunks(spec);
        int groupChunks = spec.groupSize() == 0 ? chunks : (int) spec.groupSize() / chunkValues(spec);
        boolean slicedGroups = spec.groupSize() == SLICE;  // INT4 g32: two groups per chunk
        long scales = spec.scalesOffset();  // computed once: it is not free (it walks the tensor's shape)
        long mins = asym ? spec.minsOffset() : 0;
        RowScratch s = ROW_SCRATCH.get().fit(groups, chunks);
        for (int rb = r0; rb < r1; rb += ROW_BLOCK) {
            int rows = Math.min(ROW_BLOCK, r1 - rb);
            for (int j = 0; j < rows; j++) {
                for (int g = 0; g < groups; g++) {
                    long gi = (long) (rb + j) * groups + g;
                    s.scales[j * groups + g] = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2 * gi));
                    if (asym) {
                        s.mins[j * groups + g] = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, mins + 2 * gi));
                    }
                }
            }
            for (int t = 0; t < batch; t++) {
                int xo = t * paddedK;
                for (int j = 0; j < rows; j++) {
                    long row = (rb + j) * rowBytes;
                    if (slicedGroups) {
                        int4Slices(w, row, chunks, groups, xp, xo, s.lanes, s.fieldSums);
                    } else {
                        groupSums(e, w, row, rowBytes, chunks, groupChunks, xp, xo, s.fieldSums);
                    }
                    if (groups == 1) {  // one scale per row (ternary, binary): the sum is the one term
                        y[t * n + rb + j] = (0f + term(e, s, j, s.fieldSums[0], groupSums[t])) * tokenScales[t];
                    } else {
                        terms(e, groups, s, j * groups, groupSums, t * groups);
                    }
                }
                if (groups > 1) {
                    sumTerms(s.terms, groups, rows, tokenScales[t], y, t * n + rb);
                }
            }
        }
    }

    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;

    /** a in acc_g = a F_g + c X_g (see the class comment). */
    private static int fieldFactor(Encoding e) {
        return e == Encoding.BINARY ? -2 : 1;
    }

    /** c in acc_g = a F_g + c X_g: the fields' offset from the codes (BINARY: code = 1 - 2 bit). */
    private static int sumFactor(Encoding e) {
        return switch (e) {
            case TERNARY -> -1;
            case INT4 -> -8;
            case BINARY -> 1;
            default -> 0;
        };
    }

    /** One group's term {@code s_g acc_g + m_g X_g}: field sum F_g, activation sum X_g, scale and min at at. */
    private static float term(Encoding e, RowScratch s, int at, int fieldSum, int x) {
        return s.scales[at] * (fieldFactor(e) * fieldSum + sumFactor(e) * x)
                + (e == Encoding.INT4_ASYM ? s.mins[at] * x : 0f);
    }

    /**
     * The oracle's group terms of one row into {@code s.terms[at + g]} (its scales and mins at {@code at} too),
     * formed 8 groups at a time: the same IEEE operations lane by lane as {@link #term}.
     */
    private static void terms(Encoding e, int groups, RowScratch s, int at, int[] groupSums, int s0) {
        int a = fieldFactor(e);
        int c = sumFactor(e);
        boolean asym = e == Encoding.INT4_ASYM;
        int g = 0;
        for (; g <= groups - I.length(); g += I.length()) {
            IntVector f = IntVector.fromArray(I, s.fieldSums, g);
            IntVector x = IntVector.fromArray(I, groupSums, s0 + g);
            FloatVector acc = (FloatVector) f.mul(a).add(x.mul(c)).convert(VectorOperators.I2F, 0);
            FloatVector term = acc.mul(FloatVector.fromArray(F8, s.scales, at + g));
            if (asym) {
                FloatVector xf = (FloatVector) x.convert(VectorOperators.I2F, 0);
                term = term.add(xf.mul(FloatVector.fromArray(F8, s.mins, at + g)));
            } else {
                term = term.add(0f);
            }
            term.intoArray(s.terms, at + g);
        }
        for (; g < groups; g++) {
            s.terms[at + g] = term(e, s, at + g, s.fieldSums[g], groupSums[s0 + g]);
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
    // after each run. Vectors never cross a call, so the lane sums below are written out in each
    // method: where C2 declined to inline a helper that took vectors (too large for a cold call site, or past
    // NodeCountInliningCutoff in a big method), the vectors were boxed and the kernel ran 2 to 8x slower.
    // A lane sum: an int16 pair (lo, hi) read as one int lane is lo = (v << 16) >> 16 and hi = v >> 16.

    /**
     * F_g of every group of one TERNARY, INT4 (groups of whole chunks) or BINARY row: groups of {@code groupChunks}
     * chunks (the last may be shorter).
     */
    private static void groupSums(Encoding e, MemorySegment w, long row, long rowBytes, int chunks, int groupChunks,
                                  short[] xp, int xo, int[] out) {
        for (int g = 0, c0 = 0; c0 < chunks; g++, c0 += groupChunks) {
            int c1 = Math.min(chunks, c0 + groupChunks);
            out[g] = switch (e) {
                case TERNARY -> ternarySum(w, row, c0, c1, xp, xo);
                case BINARY -> binarySum(w, row, rowBytes, c0, c1, xp, xo);
                default -> int4Sum(w, row, c0, c1, xp, xo);
            };
        }
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

    /**
     * F over chunks [c0, c1) of an INT4 row, one call per run: with the runs looped inside one method, as the ternary
     * and binary sums do, or with four sums and runs twice as long, C2 compiled INT4 25% slower (4096 x 4096 g128,
     * one thread, -XX:UseAVX=2: 8.6 G products/s against 11.7).
     */
    private static int int4Sum(MemorySegment w, long row, int c0, int c1, short[] xp, int xo) {
        int sum = 0;
        for (int c = c0; c < c1; c += INT4_RUN) {
            sum += int4Run(w, row, c, Math.min(c1, c + INT4_RUN), xp, xo);
        }
        return sum;
    }

    /** Chunks [c0, c1) of an INT4 row: a chunk holds two slices of 32 values (shifts 0 and 8, then 4 and 12). */
    private static int int4Run(MemorySegment w, long row, int c0, int c1, short[] xp, int xo) {
        ShortVector a = ShortVector.zero(S);
        ShortVector b = ShortVector.zero(S);
        for (int c = c0; c < c1; c++) {
            ShortVector p = ShortVector.fromMemorySegment(S, w, row + 32L * c, LE);
            int x = xo + 64 * c;
            a = a.add(p.and((short) 15).mul(ShortVector.fromArray(S, xp, x)))
                    .add(p.lanewise(VectorOperators.LSHR, 8).and((short) 15).mul(ShortVector.fromArray(S, xp, x + 16)));
            b = b.add(p.lanewise(VectorOperators.LSHR, 4).and((short) 15).mul(ShortVector.fromArray(S, xp, x + 32)))
                    .add(p.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S, xp, x + 48)));
        }
        IntVector u = a.reinterpretAsInts();
        IntVector v = b.reinterpretAsInts();
        return u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                .add(u.lanewise(VectorOperators.ASHR, 16))
                .add(v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                .add(v.lanewise(VectorOperators.ASHR, 16))
                .reduceLanes(VectorOperators.ADD);
    }

    /** Groups of 32 values: two sums per chunk, one per slice. */
    private static void int4Slices(MemorySegment w, long row, int chunks, int groups, short[] xp, int xo,
                                   int[] lanes, int[] out) {
        for (int c = 0; c < chunks; c++) {
            ShortVector p = ShortVector.fromMemorySegment(S, w, row + 32L * c, LE);
            int x = xo + 64 * c;
            ShortVector a = p.and((short) 15).mul(ShortVector.fromArray(S, xp, x)).add(
                    p.lanewise(VectorOperators.LSHR, 8).and((short) 15).mul(ShortVector.fromArray(S, xp, x + 16)));
            ShortVector b = p.lanewise(VectorOperators.LSHR, 4).and((short) 15)
                    .mul(ShortVector.fromArray(S, xp, x + 32))
                    .add(p.lanewise(VectorOperators.LSHR, 12).mul(ShortVector.fromArray(S, xp, x + 48)));
            IntVector u = a.reinterpretAsInts();
            IntVector v = b.reinterpretAsInts();
            u.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(u.lanewise(VectorOperators.ASHR, 16)).intoArray(lanes, 16 * c);
            v.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16)
                    .add(v.lanewise(VectorOperators.ASHR, 16)).intoArray(lanes, 16 * c + 8);
        }
        foldGroups(lanes, 0, groups, out);  // a padding-only last slice has no group and is left out
    }

    /** Chunks in one binary run: 4 products of at most 127 per chunk in each int16 sum. */
    private static final int BINARY_RUN = 32767 / (4 * 127);

    /** F over chunks [c0, c1) of a binary row; a short last chunk of the row is read with a lane mask (its activations
     * are zero). */
    private static int binarySum(MemorySegment w, long row, long rowBytes, int c0, int c1, short[] xp, int xo) {
        IntVector total = IntVector.zero(I);
        for (int r0 = c0; r0 < c1; r0 += BINARY_RUN) {
            int r1 = Math.min(c1, r0 + BINARY_RUN);
            ShortVector a = ShortVector.zero(S);
            ShortVector b = ShortVector.zero(S);
            ShortVector c = ShortVector.zero(S);
            ShortVector d = ShortVector.zero(S);
            for (int k = r0; k < r1; k++) {
                long at = row + 32L * k;
                ShortVector p = at + 32 <= row + rowBytes
                        ? ShortVector.fromMemorySegment(S, w, at, LE)
                        : ShortVector.fromMemorySegment(S, w, at, LE,
                                VectorMask.fromLong(S, (1L << ((row + rowBytes - at) / 2)) - 1));
                int x = xo + 256 * k;
                a = a.add(p.and((short) 1).mul(ShortVector.fromArray(S, xp, x)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 1).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 16)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 2).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 32)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 3).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 48)));
                a = a.add(p.lanewise(VectorOperators.LSHR, 4).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 64)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 5).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 80)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 6).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 96)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 7).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 112)));
                a = a.add(p.lanewise(VectorOperators.LSHR, 8).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 128)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 9).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 144)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 10).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 160)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 11).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 176)));
                a = a.add(p.lanewise(VectorOperators.LSHR, 12).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 192)));
                b = b.add(p.lanewise(VectorOperators.LSHR, 13).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 208)));
                c = c.add(p.lanewise(VectorOperators.LSHR, 14).and((short) 1).mul(ShortVector.fromArray(S, xp, x + 224)));
                d = d.add(p.lanewise(VectorOperators.LSHR, 15).mul(ShortVector.fromArray(S, xp, x + 240)));
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

    // Groups of 32 values (INT4 g32) would cost one horizontal sum each. Instead each group's eight int32
    // lanes are stored, and foldGroups turns eight groups' lanes into one vector of eight sums: fold(a, b) keeps a's
    // lanes outside the mask and b's inside, and adds the other lanes moved by the shuffle, halving each vector.
    // The folds are written out: a helper taking vectors was not always inlined, and then ran 5x slower.
    private static final VectorMask<Integer> HALVES = lanes(4, 5, 6, 7);
    private static final VectorShuffle<Integer> SWAP_HALVES = VectorShuffle.fromValues(I, 4, 5, 6, 7, 0, 1, 2, 3);
    private static final VectorMask<Integer> PAIRS = lanes(2, 3, 6, 7);
    private static final VectorShuffle<Integer> SWAP_PAIRS = VectorShuffle.fromValues(I, 2, 3, 0, 1, 6, 7, 4, 5);
    private static final VectorMask<Integer> ODD = lanes(1, 3, 5, 7);
    private static final VectorShuffle<Integer> SWAP_ODD = VectorShuffle.fromValues(I, 1, 0, 3, 2, 5, 4, 7, 6);
    /** Three folds of groups 0..7 leave them in lanes 0, 4, 2, 6, 1, 5, 3, 7; this puts them back in order. */
    private static final VectorShuffle<Integer> FOLDED_ORDER = VectorShuffle.fromValues(I, 0, 4, 2, 6, 1, 5, 3, 7);

    private static VectorMask<Integer> lanes(int... set) {
        boolean[] m = new boolean[I.length()];
        for (int lane : set) {
            m[lane] = true;
        }
        return VectorMask.fromArray(I, m, 0);
    }

    /**
     * Sums of groups [from, to) from their int32 lanes {@code lanes[8 g .. 8 g + 8)} into {@code out[g]}. Callers
     * fold every eight groups as soon as their lanes are stored, while those are still in L1.
     */
    private static void foldGroups(int[] lanes, int from, int to, int[] out) {
        int g = from;
        for (; g + 8 <= to; g += 8) {
            int o = 8 * g;
            IntVector v0 = IntVector.fromArray(I, lanes, o);
            IntVector v1 = IntVector.fromArray(I, lanes, o + 8);
            IntVector v2 = IntVector.fromArray(I, lanes, o + 16);
            IntVector v3 = IntVector.fromArray(I, lanes, o + 24);
            IntVector v4 = IntVector.fromArray(I, lanes, o + 32);
            IntVector v5 = IntVector.fromArray(I, lanes, o + 40);
            IntVector v6 = IntVector.fromArray(I, lanes, o + 48);
            IntVector v7 = IntVector.fromArray(I, lanes, o + 56);
            IntVector f01 = v0.blend(v1, HALVES).add(v1.blend(v0, HALVES).rearrange(SWAP_HALVES));
            IntVector f23 = v2.blend(v3, HALVES).add(v3.blend(v2, HALVES).rearrange(SWAP_HALVES));
            IntVector f45 = v4.blend(v5, HALVES).add(v5.blend(v4, HALVES).rearrange(SWAP_HALVES));
            IntVector f67 = v6.blend(v7, HALVES).add(v7.blend(v6, HALVES).rearrange(SWAP_HALVES));
            IntVector f03 = f01.blend(f23, PAIRS).add(f23.blend(f01, PAIRS).rearrange(SWAP_PAIRS));
            IntVector f47 = f45.blend(f67, PAIRS).add(f67.blend(f45, PAIRS).rearrange(SWAP_PAIRS));
            f03.blend(f47, ODD).add(f47.blend(f03, ODD).rearrange(SWAP_ODD)).rearrange(FOLDED_ORDER)
                    .intoArray(out, g);
        }
        for (; g < to; g++) {
            int sum = 0;
            for (int i = 0; i < 8; i++) {
                sum += lanes[8 * g + i];
            }
            out[g] = sum;
        }
    }
}
