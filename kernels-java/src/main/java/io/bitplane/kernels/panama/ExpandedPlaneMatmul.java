package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Bit-plane weights (BINARY, TERNARY, INT4, INT4_ASYM) by expanding each row once into float codes and taking one
 * fused multiply-add dot product per token. The expansion is the expensive part and is shared by every token of a
 * batch, so this is the batched kernel; for rows in large groups it also beats the lookup tables on one token.
 *
 * <pre>
 * W: per row P planes of Wd = ceil(K / 64) little-endian u64 words, row n at word n*P*Wd, plane p at + p*Wd;
 *    value k is bit k%64 of word k/64.  Or layout 1 (packed codes, PackedCodes): b-bit fields, 32-byte blocks of
 *    V = 256 / b values, value j of a block in byte j % 32 at bit (j / 32) b.  Scales (and INT4_ASYM mins): f16 per
 *    group.
 * Expansion, L = float lanes (8 on AVX2, 16 on AVX-512), L consecutive values at a time: broadcast the L plane
 *    bits, shift lane i right by i, keep bit 0, combine the planes as integers, convert to float:
 *    BINARY 1 - 2 sign   TERNARY mask - 2 (sign AND mask)   INT4 sum_p 2^p bit_p - 8   INT4_ASYM sum_p 2^p bit_p
 *    into codes[0 .. 64 Wd) (padding bits give codes the zero-padded activations cancel).
 * Activations: per token, zero-padded to 64 Wd floats (INT8 activation codes as floats).
 * Per group g of token t: acc = sum of codes x, a lane-wise FMA over the group's chunks. INT8 activations: a
 *    fixed-order lane sum per group, y = s_x sum_g s_g acc_g (+ m_g X_g for INT4_ASYM), the oracle's order.
 *    Float activations: total += s_g acc lane by lane, y = lane sum of total (+ sum_g m_g X_g).
 * Rows go in blocks of 4, walked in tiles of 512 values: a tile of the four rows is expanded (8 KB, in L1), then
 *    every token runs over it, each activation vector loaded feeding four FMAs.
 * </pre>
 * With INT8 activations every product and partial sum is an integer below 2^24 (checked by {@link #supports}), so
 * the float sums are exact and equal the scalar oracle's integer sums bit for bit; the final scale sum follows the
 * oracle's order. Each token's arithmetic is the same whatever the batch size.
 */
final class ExpandedPlaneMatmul {
    private ExpandedPlaneMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> F = PanamaBackend.F;
    static final VectorSpecies<Integer> I = PanamaBackend.I;
    private static final IntVector LANE_INDEX = IntVector.fromArray(I, iota(I.length()), 0);
    /**
     * As many byte lanes as float lanes: the packed fields of L values. None with 4 float lanes (128-bit vectors, as
     * on NEON), where no 32-bit vector shape exists: the four bytes are then read as one int and spread over the
     * lanes by {@link #BYTE_SHIFTS}.
     */
    private static final VectorSpecies<Byte> B = F.length() >= 8
            ? VectorSpecies.of(byte.class, VectorShape.forBitSize(8 * F.length())) : null;
    /** Lane i: 8 i, the place of byte i in a little-endian int. */
    private static final IntVector BYTE_SHIFTS = LANE_INDEX.mul(8);

    private static int[] iota(int n) {
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = i;
        }
        return a;
    }

    /** Values per group as this kernel sums them (a whole padded row when the tensor has one group per row). */
    static int groupValues(TensorSpec spec) {
        return spec.groupSize() == 0 ? (int) spec.wordsPerRow() * 64 : spec.groupSize();
    }

    /**
     * Bit-plane tensors whose groups are whole vectors, and (for exactness on INT8 activations) whose group sums
     * stay below 2^24: 127 x the largest code x the group.
     */
    static boolean supports(TensorSpec spec) {
        if (!spec.encoding().isBitPlanes() || 64 % F.length() != 0) {
            return false;
        }
        int g = groupValues(spec);
        int maxCode = spec.encoding() == Encoding.INT4 || spec.encoding() == Encoding.INT4_ASYM ? 15 : 1;
        return g % F.length() == 0 && (long) g * 127 * maxCode < (1 << 24);
    }

    /**
     * Whether one token is better served here than by the lookup tables: always with float activations (small
     * groups cost no horizontal sums there) and for packed codes (the tables read bit planes only); with INT8
     * activations, groups of at least 8 vectors.
     */
    static boolean preferredForOneToken(TensorSpec spec) {
        return spec.activations() != ActivationHint.INT8 || spec.layout() == TensorSpec.LAYOUT_PACKED
                || groupValues(spec) >= 8 * F.length();
    }

    /** Padded length of a token's activations and of a row's codes. */
    static int paddedK(TensorSpec spec) {
        return (int) spec.wordsPerRow() * 64;
    }

    /**
     * Expands values [k0, k1) of row {@code r} (k0 and k1 multiples of 64) into {@code codes[at ..]}. One loop
     * per encoding: a shared loop with the switch inside ran 5x slower once C2 had seen several encodings.
     */
    static void expandTile(TensorSpec spec, MemorySegment w, long r, int k0, int k1, float[] codes, int at) {
        Encoding e = spec.encoding();
        if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
            expandPacked(w, r * PackedCodes.rowBytes(spec), PackedCodes.bits(e), -PackedCodes.codeOfField(e, 0), k0,
                    k1, codes, at);
            return;
        }
        long words = spec.wordsPerRow();
        long rowWord = r * e.planes * words;
        switch (e) {
            case BINARY -> expandBinary(w, rowWord, k0, k1, codes, at);
            case TERNARY -> expandTernary(w, rowWord, words, k0, k1, codes, at);
            case INT4, INT4_ASYM -> expandInt4(w, rowWord, words, k0, k1, codes, at, e == Encoding.INT4 ? 8 : 0);
            default -> throw new IllegalStateException(e.toString());
        }
    }

    private static void expandBinary(MemorySegment w, long rowWord, int k0, int k1, float[] codes, int at) {
        int lanes = F.length();
        for (long wi = k0 / 64; wi < k1 / 64; wi++) {
            long sign = w.getAtIndex(LONG, rowWord + wi);
            int base = at + (int) (wi * 64 - k0);
            for (int o = 0; o < 64; o += lanes) {
                store(bits(sign, o).mul(-2).add(1), codes, base + o);
            }
        }
    }

    private static void expandTernary(MemorySegment w, long rowWord, long words, int k0, int k1, float[] codes,
                                      int at) {
        int lanes = F.length();
        for (long wi = k0 / 64; wi < k1 / 64; wi++) {
            long mask = w.getAtIndex(LONG, rowWord + wi);
            long sign = w.getAtIndex(LONG, rowWord + words + wi) & mask;
            int base = at + (int) (wi * 64 - k0);
            for (int o = 0; o < 64; o += lanes) {
                store(bits(mask, o).sub(bits(sign, o).mul(2)), codes, base + o);
            }
        }
    }

    private static void expandInt4(MemorySegment w, long rowWord, long words, int k0, int k1, float[] codes, int at,
                                   int offset) {
        int lanes = F.length();
        for (long wi = k0 / 64; wi < k1 / 64; wi++) {
            long p0 = w.getAtIndex(LONG, rowWord + wi);
            long p1 = w.getAtIndex(LONG, rowWord + words + wi);
            long p2 = w.getAtIndex(LONG, rowWord + 2 * words + wi);
            long p3 = w.getAtIndex(LONG, rowWord + 3 * words + wi);
            int base = at + (int) (wi * 64 - k0);
            for (int o = 0; o < 64; o += lanes) {
                IntVector u = bits(p0, o).add(bits(p1, o).lanewise(VectorOperators.LSHL, 1))
                        .add(bits(p2, o).lanewise(VectorOperators.LSHL, 2))
                        .add(bits(p3, o).lanewise(VectorOperators.LSHL, 3));
                store(u.sub(offset), codes, base + o);
            }
        }
    }

    /**
     * Layout 1 (packed codes): L values at a time are L consecutive bytes of a 32-byte block, widened to int lanes,
     * shifted right by the field's place in the byte and masked; the field minus the encoding's offset is the code.
     */
    private static void expandPacked(MemorySegment w, long rowByte, int bits, int offset, int k0, int k1,
                                     float[] codes, int at) {
        int lanes = F.length();
        int perBlock = 256 / bits;
        int mask = (1 << bits) - 1;
        for (int i = k0; i < k1; i += lanes) {
            int j = i % perBlock;
            long at32 = rowByte + (long) (i / perBlock) * 32 + j % 32;
            IntVector f = B != null
                    ? ((IntVector) ByteVector.fromMemorySegment(B, w, at32, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2I, I, 0)).and(0xFF)
                    : IntVector.broadcast(I, w.get(PanamaBackend.INT, at32))
                            .lanewise(VectorOperators.LSHR, BYTE_SHIFTS).and(0xFF);
            store(f.lanewise(VectorOperators.LSHR, (j / 32) * bits).and(mask).sub(offset), codes, at + i - k0);
        }
    }

    private static void store(IntVector c, float[] codes, int at) {
        ((FloatVector) c.convert(VectorOperators.I2F, 0)).intoArray(codes, at);
    }

    /** Bits {@code o .. o + L} of {@code word}, one per lane, as 0 or 1. */
    private static IntVector bits(long word, int o) {
        return IntVector.broadcast(I, (int) (word >>> o)).lanewise(VectorOperators.LSHR, LANE_INDEX).and(1);
    }

    /** Per-token padded activations: {@code xs[t * paddedK + k]}, zero past K. */
    static void padActivations(float[] x, int batch, int k, float[] xs, int paddedK) {
        for (int t = 0; t < batch; t++) {
            System.arraycopy(x, t * k, xs, t * paddedK, k);
            java.util.Arrays.fill(xs, t * paddedK + k, (t + 1) * paddedK, 0f);
        }
    }

    /** The same for INT8 activation codes (held as int16): exact as floats. */
    static void padActivations(short[] q, int batch, int k, float[] xs, int paddedK) {
        for (int t = 0; t < batch; t++) {
            for (int i = 0; i < k; i++) {
                xs[t * paddedK + i] = q[t * k + i];
            }
            java.util.Arrays.fill(xs, t * paddedK + k, (t + 1) * paddedK, 0f);
        }
    }

    /** Rows expanded and multiplied together: each activation vector loaded serves this many rows. */
    static final int ROW_BLOCK = 4;
    /** Values per tile: a block's expanded tile (4 x 512 floats, 8 KB) stays in L1 while every token uses it. */
    static final int TILE = 512;

    /** Floats of per-thread scratch {@link #rows} needs: the expanded tile, and per token and row a running sum
     * vector and a row total. */
    static int scratchFloats(int batch) {
        return ROW_BLOCK * TILE + batch * ROW_BLOCK * (2 * F.length() + 1);
    }

    /**
     * Rows [r0, r1) for {@code batch} tokens. {@code tokenScales} is null for float activations, else each token's
     * INT8 scale (and xs holds its codes). {@code groupSums[t * groups + g]} is needed for INT4_ASYM only.
     * {@code scratch} holds {@link #scratchFloats} floats. The row is walked in tiles of {@link #TILE} values; a
     * token's running group sum vector is kept across tiles, so every (row, token) pair takes exactly the FMAs, in
     * the same order, that it would take alone: results depend neither on the batch nor on the rows' split.
     */
    static void rows(TensorSpec spec, MemorySegment w, float[] xs, float[] tokenScales, float[] groupSums,
                     float[] y, int batch, float[] scratch, int r0, int r1) {
        int n = (int) spec.rows();
        int paddedK = paddedK(spec);
        int groups = (int) spec.groupsPerRow();
        int group = groupValues(spec);
        int lanes = F.length();
        boolean asym = spec.encoding() == Encoding.INT4_ASYM;
        long scales = spec.scalesOffset();
        long mins = asym ? spec.minsOffset() : 0;
        int accs = ROW_BLOCK * TILE;                     // [batch][ROW_BLOCK][lanes] running group sums
        int totals = accs + batch * ROW_BLOCK * lanes;   // [batch][ROW_BLOCK] row totals (scalar)
        int laneTotals = totals + batch * ROW_BLOCK;     // [batch][ROW_BLOCK][lanes] row totals, float path
        // Float activations: each group's sums are scaled lane by lane into a row total vector and the lanes are
        // added once per row (as Int8Matmul does), so small groups cost no horizontal sums. INT8 activations
        // need every group's exact integer sum, taken across the lanes, to follow the oracle's order.
        boolean laneScaled = tokenScales == null;
        for (int rb = r0; rb < r1; rb += ROW_BLOCK) {
            int rows = Math.min(ROW_BLOCK, r1 - rb);
            java.util.Arrays.fill(scratch, accs, laneTotals + batch * ROW_BLOCK * lanes, 0f);
            for (int k0 = 0; k0 < paddedK; k0 += TILE) {
                int k1 = Math.min(paddedK, k0 + TILE);
                for (int i = 0; i < ROW_BLOCK; i++) {
                    // Short blocks repeat their last row: the extra sums are computed and dropped.
                    expandTile(spec, w, rb + Math.min(i, rows - 1), k0, k1, scratch, i * TILE);
                }
                for (int t = 0; t < batch; t++) {
                    int xo = t * paddedK;
                    int ao = accs + t * ROW_BLOCK * lanes;
                    FloatVector a0 = FloatVector.fromArray(F, scratch, ao);
                    FloatVector a1 = FloatVector.fromArray(F, scratch, ao + lanes);
                    FloatVector a2 = FloatVector.fromArray(F, scratch, ao + 2 * lanes);
                    FloatVector a3 = FloatVector.fromArray(F, scratch, ao + 3 * lanes);
                    int k = k0;
                    while (k < k1) {
                        // Up to the end of k's group (the last group runs on through the row's zero padding).
                        int g = Math.min(groups - 1, k / group);
                        int groupEnd = g == groups - 1 ? paddedK : (g + 1) * group;
                        int segmentEnd = Math.min(k1, groupEnd);
                        // A branch-free loop: C2 keeps the four sums in registers only in a loop this simple.
                        for (; k < segmentEnd; k += lanes) {
                            int c = k - k0;
                            FloatVector x = FloatVector.fromArray(F, xs, xo + k);
                            a0 = FloatVector.fromArray(F, scratch, c).fma(x, a0);
                            a1 = FloatVector.fromArray(F, scratch, TILE + c).fma(x, a1);
                            a2 = FloatVector.fromArray(F, scratch, 2 * TILE + c).fma(x, a2);
                            a3 = FloatVector.fromArray(F, scratch, 3 * TILE + c).fma(x, a3);
                        }
                        if (segmentEnd == groupEnd) {
                            // The group ends: fold its sums into the row totals, in group order.
                            float xg = asym ? groupSums[t * groups + g] : 0f;
                            int to = totals + t * ROW_BLOCK;
                            if (laneScaled) {
                                // total += s_g acc, lane by lane. Written out: a helper that took the vectors
                                // was not inlined at 128 bits and boxed one a row and group.
                                int lo = laneTotals + t * ROW_BLOCK * lanes;
                                FloatVector.broadcast(F, scale(w, scales, rb, groups, g))
                                        .fma(a0, FloatVector.fromArray(F, scratch, lo)).intoArray(scratch, lo);
                                FloatVector.broadcast(F, scale(w, scales, rb + Math.min(1, rows - 1), groups, g))
                                        .fma(a1, FloatVector.fromArray(F, scratch, lo + lanes))
                                        .intoArray(scratch, lo + lanes);
                                FloatVector.broadcast(F, scale(w, scales, rb + Math.min(2, rows - 1), groups, g))
                                        .fma(a2, FloatVector.fromArray(F, scratch, lo + 2 * lanes))
                                        .intoArray(scratch, lo + 2 * lanes);
                                FloatVector.broadcast(F, scale(w, scales, rb + Math.min(3, rows - 1), groups, g))
                                        .fma(a3, FloatVector.fromArray(F, scratch, lo + 3 * lanes))
                                        .intoArray(scratch, lo + 3 * lanes);
                                if (asym) {
                                    for (int i = 0; i < rows; i++) {
                                        scratch[to + i] += minTerm(w, mins, rb + i, groups, g, xg);
                                    }
                                }
                            } else {
                                scratch[to] += groupTerm(w, scales, mins, rb, groups, g, Lanes.sum(F, a0), asym, xg);
                                if (rows > 1) {
                                    scratch[to + 1] += groupTerm(w, scales, mins, rb + 1, groups, g, Lanes.sum(F, a1),
                                            asym, xg);
                                }
                                if (rows > 2) {
                                    scratch[to + 2] += groupTerm(w, scales, mins, rb + 2, groups, g, Lanes.sum(F, a2),
                                            asym, xg);
                                }
                                if (rows > 3) {
                                    scratch[to + 3] += groupTerm(w, scales, mins, rb + 3, groups, g, Lanes.sum(F, a3),
                                            asym, xg);
                                }
                            }
                            a0 = FloatVector.zero(F);
                            a1 = FloatVector.zero(F);
                            a2 = FloatVector.zero(F);
                            a3 = FloatVector.zero(F);
                        }
                    }
                    a0.intoArray(scratch, ao);
                    a1.intoArray(scratch, ao + lanes);
                    a2.intoArray(scratch, ao + 2 * lanes);
                    a3.intoArray(scratch, ao + 3 * lanes);
                }
            }
            for (int t = 0; t < batch; t++) {
                float ts = tokenScales == null ? 1f : tokenScales[t];
                for (int i = 0; i < rows; i++) {
                    float sum = scratch[totals + t * ROW_BLOCK + i];
                    if (laneScaled) {
                        // The lane totals in order, read from the array: Lanes.sum on a vector was not inlined at
                        // 128 bits and boxed it, and reduceLanes may add in another order once compiled.
                        float lanesSum = 0f;
                        for (int l = 0, at = laneTotals + (t * ROW_BLOCK + i) * lanes; l < lanes; l++) {
                            lanesSum += scratch[at + l];
                        }
                        sum = lanesSum + sum;
                    }
                    y[t * n + rb + i] = tokenScales == null ? sum : sum * ts;
                }
            }
        }
    }

    /** The scale s_g of group g of row r. */
    private static float scale(MemorySegment w, long scales, long r, int groups, int g) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2 * (r * groups + g)));
    }

    /** INT4_ASYM's {@code m_g X_g} for group g of row r. */
    private static float minTerm(MemorySegment w, long mins, long r, int groups, int g, float x) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, mins + 2 * (r * groups + g))) * x;
    }

    /** {@code s_g acc (+ m_g X_g)} of group g of row r, as the oracle forms it. */
    private static float groupTerm(MemorySegment w, long scales, long mins, long r, int groups, int g, float acc,
                                   boolean asym, float x) {
        long gi = r * groups + g;
        float s = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2 * gi));
        return s * acc + (asym ? Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, mins + 2 * gi)) * x : 0f);
    }

    /** Per-token group sums of the padded activations (INT4_ASYM's m_g X_g term), in the oracle's order. */
    static void groupSums(TensorSpec spec, float[] xs, int batch, int paddedK, float[] out) {
        int k = (int) spec.cols();
        int groups = (int) spec.groupsPerRow();
        int group = spec.groupSize() == 0 ? k : spec.groupSize();
        for (int t = 0; t < batch; t++) {
            BitPlaneMatmul.groupSums(xs, t * paddedK, k, group, out, t * groups);
        }
    }
}
