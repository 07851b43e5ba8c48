package io.bitplane.kernels.panama;

import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
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
 *    value k is bit k%64 of word k/64.  Scales (and INT4_ASYM mins): f16 per group.
 * Expansion, L = float lanes (8 on AVX2, 16 on AVX-512), L consecutive values at a time: broadcast the L plane
 *    bits, shift lane i right by i, keep bit 0, combine the planes as integers, convert to float:
 *    BINARY 1 - 2 sign   TERNARY mask - 2 (sign AND mask)   INT4 sum_p 2^p bit_p - 8   INT4_ASYM sum_p 2^p bit_p
 *    into codes[0 .. 64 Wd) (padding bits give codes the zero-padded activations cancel).
 * Activations: per token, zero-padded to 64 Wd floats (INT8 activation codes as floats).
 * Per group g of token t: acc = sum of codes x (lane-wise FMA over the group's chunks, then a fixed-order lane
 *    sum), y = sum_g s_g acc_g (+ m_g X_g for INT4_ASYM), times the token's scale for INT8 activations.
 * Rows go in blocks of 4: expanded together, then each activation vector loaded feeds four FMAs.
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

    /** Whether one token is better served here than by the lookup tables: groups of at least 8 vectors. */
    static boolean preferredForOneToken(TensorSpec spec) {
        return groupValues(spec) >= 8 * F.length();
    }

    /** Padded length of a token's activations and of a row's codes. */
    static int paddedK(TensorSpec spec) {
        return (int) spec.wordsPerRow() * 64;
    }

    /** Expands row {@code r} into {@code codes[at .. at + paddedK)}. */
    static void expandRow(TensorSpec spec, MemorySegment w, long r, float[] codes, int at) {
        Encoding e = spec.encoding();
        int planes = e.planes;
        long words = spec.wordsPerRow();
        long rowWord = r * planes * words;
        int lanes = F.length();
        for (long wi = 0; wi < words; wi++) {
            long p0 = w.getAtIndex(LONG, rowWord + wi);
            long p1 = planes > 1 ? w.getAtIndex(LONG, rowWord + words + wi) : 0;
            long p2 = planes > 2 ? w.getAtIndex(LONG, rowWord + 2 * words + wi) : 0;
            long p3 = planes > 3 ? w.getAtIndex(LONG, rowWord + 3 * words + wi) : 0;
            int base = at + (int) (wi * 64);
            for (int o = 0; o < 64; o += lanes) {
                IntVector c = switch (e) {
                    case BINARY -> bits(p0, o).mul(-2).add(1);
                    case TERNARY -> {
                        IntVector m = bits(p0, o);
                        yield m.sub(bits(p1, o).and(m).mul(2));
                    }
                    case INT4, INT4_ASYM -> {
                        IntVector u = bits(p0, o).add(bits(p1, o).lanewise(VectorOperators.LSHL, 1))
                                .add(bits(p2, o).lanewise(VectorOperators.LSHL, 2))
                                .add(bits(p3, o).lanewise(VectorOperators.LSHL, 3));
                        yield e == Encoding.INT4 ? u.sub(8) : u;
                    }
                    default -> throw new IllegalStateException(e.toString());
                };
                ((FloatVector) c.convert(VectorOperators.I2F, 0)).intoArray(codes, base + o);
            }
        }
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

    /** Rows expanded and multiplied together: each activation vector loaded serves this many rows. */
    static final int ROW_BLOCK = 4;

    /**
     * Rows [r0, r1) for {@code batch} tokens. {@code tokenScales} is null for float activations, else each token's
     * INT8 scale (and xs holds its codes). {@code groupSums[t * groups + g]} is needed for INT4_ASYM only.
     * {@code codes} holds {@link #ROW_BLOCK} expanded rows. A row's sums are the same whatever rows share its
     * block, so results do not depend on how rows are split between threads.
     */
    static void rows(TensorSpec spec, MemorySegment w, float[] xs, float[] tokenScales, float[] groupSums,
                     float[] y, int batch, float[] codes, int r0, int r1) {
        int n = (int) spec.rows();
        int paddedK = paddedK(spec);
        int groups = (int) spec.groupsPerRow();
        int group = groupValues(spec);
        int lanes = F.length();
        boolean asym = spec.encoding() == Encoding.INT4_ASYM;
        for (int rb = r0; rb < r1; rb += ROW_BLOCK) {
            int rows = Math.min(ROW_BLOCK, r1 - rb);
            for (int i = 0; i < ROW_BLOCK; i++) {
                // Short blocks repeat their last row: the extra sums are computed and dropped.
                expandRow(spec, w, rb + Math.min(i, rows - 1), codes, i * paddedK);
            }
            for (int t = 0; t < batch; t++) {
                int xo = t * paddedK;
                float s0 = 0;
                float s1 = 0;
                float s2 = 0;
                float s3 = 0;
                for (int g = 0; g < groups; g++) {
                    int k0 = g * group;
                    int k1 = Math.min(paddedK, k0 + group);
                    FloatVector a0 = FloatVector.zero(F);
                    FloatVector a1 = a0;
                    FloatVector a2 = a0;
                    FloatVector a3 = a0;
                    for (int k = k0; k < k1; k += lanes) {
                        FloatVector x = FloatVector.fromArray(F, xs, xo + k);
                        a0 = FloatVector.fromArray(F, codes, k).fma(x, a0);
                        a1 = FloatVector.fromArray(F, codes, paddedK + k).fma(x, a1);
                        a2 = FloatVector.fromArray(F, codes, 2 * paddedK + k).fma(x, a2);
                        a3 = FloatVector.fromArray(F, codes, 3 * paddedK + k).fma(x, a3);
                    }
                    float x = asym ? groupSums[t * groups + g] : 0f;
                    s0 += groupTerm(spec, w, rb, groups, g, Lanes.sum(a0), asym, x);
                    if (rows > 1) {
                        s1 += groupTerm(spec, w, rb + 1, groups, g, Lanes.sum(a1), asym, x);
                    }
                    if (rows > 2) {
                        s2 += groupTerm(spec, w, rb + 2, groups, g, Lanes.sum(a2), asym, x);
                    }
                    if (rows > 3) {
                        s3 += groupTerm(spec, w, rb + 3, groups, g, Lanes.sum(a3), asym, x);
                    }
                }
                float ts = tokenScales == null ? 1f : tokenScales[t];
                int yo = t * n + rb;
                y[yo] = tokenScales == null ? s0 : s0 * ts;
                if (rows > 1) {
                    y[yo + 1] = tokenScales == null ? s1 : s1 * ts;
                }
                if (rows > 2) {
                    y[yo + 2] = tokenScales == null ? s2 : s2 * ts;
                }
                if (rows > 3) {
                    y[yo + 3] = tokenScales == null ? s3 : s3 * ts;
                }
            }
        }
    }

    /** {@code s_g acc (+ m_g X_g)} of group g of row r, as the oracle forms it. */
    private static float groupTerm(TensorSpec spec, MemorySegment w, long r, int groups, int g, float acc,
                                   boolean asym, float x) {
        long gi = r * groups + g;
        return scale(spec, w, gi) * acc + (asym ? min(spec, w, gi) * x : 0f);
    }

    /** Per-token group sums of the activations (INT4_ASYM's m_g X_g term), in the oracle's order. */
    static void groupSums(TensorSpec spec, float[] x, int batch, float[] out) {
        int k = (int) spec.cols();
        int groups = (int) spec.groupsPerRow();
        int group = spec.groupSize() == 0 ? k : spec.groupSize();
        for (int t = 0; t < batch; t++) {
            for (int g = 0; g < groups; g++) {
                float s = 0;
                for (int i = g * group; i < Math.min(k, (g + 1) * group); i++) {
                    s += x[t * k + i];
                }
                out[t * groups + g] = s;
            }
        }
    }

    private static float scale(TensorSpec spec, MemorySegment w, long group) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, spec.scalesOffset() + 2 * group));
    }

    private static float min(TensorSpec spec, MemorySegment w, long group) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, spec.minsOffset() + 2 * group));
    }
}
