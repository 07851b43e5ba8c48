package io.bitplane.kernels.panama;

import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Bit-plane weights (BINARY, TERNARY, INT4, INT4_ASYM) by lookup tables over the activations (the T-MAC idea).
 *
 * <pre>
 * W: per row P planes of Wd = ceil(K / 64) little-endian u64 words, row n at word n*P*Wd, plane p at + p*Wd;
 *    value k is bit k%64 of word k/64.  Scales (and INT4_ASYM mins): f16 per group.
 * Tables, built once per token: for each run j of 4 activations, lut[16j + m] = sum of x[4j + i] over the bits i
 *    set in m (activations past K count as 0). One nibble of a plane then costs one lookup instead of four
 *    multiply-adds, and the table (16 K entries) stays in the L1/L2 cache for every row.
 * Per group g:  S_p = sum over the group's nibbles of lut[nibble of plane p],  X = sum of the group's activations
 *    BINARY  acc = X - 2 S_sign           TERNARY  acc = S_mask - 2 S_sign
 *    INT4    acc = sum_p 2^p S_p - 8 X    INT4_ASYM acc = sum_p 2^p S_p, plus m_g X
 * y = sum_g s_g acc_g (times the token's scale for INT8 activations).
 * </pre>
 * With INT8 activations the tables hold exact integer sums, so results equal the scalar oracle bit for bit; with
 * float activations they differ from it only by summation order. Groups must be a multiple of 4 values (all the
 * format's quantizers' groups are); other tensors take the scalar kernel.
 */
final class BitPlaneMatmul {
    private BitPlaneMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static boolean supports(TensorSpec spec) {
        return spec.encoding().isBitPlanes() && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && spec.groupSize() % 4 == 0;
    }

    /** Tables for float activations: {@code lut[t][16 j + m]} and per-group sums {@code groupSums[t][g]}. */
    static void buildFloat(float[] x, int x0, int k, int group, float[] lut, int lo, float[] groupSums, int so) {
        int runs = (k + 3) / 4;
        for (int j = 0; j < runs; j++) {
            float a = at(x, x0, k, 4 * j);
            float b = at(x, x0, k, 4 * j + 1);
            float c = at(x, x0, k, 4 * j + 2);
            float d = at(x, x0, k, 4 * j + 3);
            int o = lo + 16 * j;
            lut[o] = 0;
            lut[o + 1] = a;
            lut[o + 2] = b;
            lut[o + 3] = a + b;
            lut[o + 4] = c;
            lut[o + 5] = a + c;
            lut[o + 6] = b + c;
            lut[o + 7] = a + b + c;
            for (int m = 8; m < 16; m++) {
                lut[o + m] = lut[o + m - 8] + d;
            }
        }
        groupSums(x, x0, k, group, groupSums, so);
    }

    /** Per-group sums of one token's activations {@code x[x0 .. x0 + k)}, each in ascending order (the oracle's). */
    static void groupSums(float[] x, int x0, int k, int group, float[] out, int o) {
        for (int g = 0, start = 0; start < k; g++, start += group) {
            float s = 0;
            for (int i = start; i < Math.min(k, start + group); i++) {
                s += x[x0 + i];
            }
            out[o + g] = s;
        }
    }

    private static float at(float[] x, int x0, int k, int i) {
        return i < k ? x[x0 + i] : 0f;
    }

    /** Tables for INT8 activation codes: exact integer subset sums and group sums. */
    static void buildInt(short[] q, int q0, int k, int group, int[] lut, int lo, int[] groupSums, int so) {
        int runs = (k + 3) / 4;
        for (int j = 0; j < runs; j++) {
            int o = lo + 16 * j;
            for (int m = 0; m < 16; m++) {
                int s = 0;
                for (int i = 0; i < 4; i++) {
                    int idx = 4 * j + i;
                    if ((m >>> i & 1) != 0 && idx < k) {
                        s += q[q0 + idx];
                    }
                }
                lut[o + m] = s;
            }
        }
        for (int g = 0, start = 0; start < k; g++, start += group) {
            int s = 0;
            for (int i = start; i < Math.min(k, start + group); i++) {
                s += q[q0 + i];
            }
            groupSums[so + g] = s;
        }
    }

    /** Sum of table entries picked by plane {@code plane} of row {@code row}, over nibbles [n0, n1). */
    private static float pickFloat(MemorySegment w, long planeWord, float[] lut, int lo, int n0, int n1) {
        float s = 0;
        int j = n0;
        while (j < n1) {
            long word = w.getAtIndex(LONG, planeWord + (j >>> 4));
            int end = Math.min(n1, (j & ~15) + 16);
            word >>>= (j & 15) * 4;
            for (; j < end; j++, word >>>= 4) {
                s += lut[lo + 16 * j + (int) (word & 15)];
            }
        }
        return s;
    }

    private static int pickInt(MemorySegment w, long planeWord, int[] lut, int lo, int n0, int n1) {
        int s = 0;
        int j = n0;
        while (j < n1) {
            long word = w.getAtIndex(LONG, planeWord + (j >>> 4));
            int end = Math.min(n1, (j & ~15) + 16);
            word >>>= (j & 15) * 4;
            for (; j < end; j++, word >>>= 4) {
                s += lut[lo + 16 * j + (int) (word & 15)];
            }
        }
        return s;
    }

    /**
     * INT4: {@code sum_p 2^p S_p} over nibbles [n0, n1) in one pass over the four planes' words, instead of four
     * passes (the per-call and per-word overhead dominated at groups of 32).
     */
    private static float int4Float(MemorySegment w, long rowWord, long words, float[] lut, int lo, int n0, int n1) {
        float s = 0;
        int j = n0;
        while (j < n1) {
            long wi = j >>> 4;
            int shift = (j & 15) * 4;
            long p0 = w.getAtIndex(LONG, rowWord + wi) >>> shift;
            long p1 = w.getAtIndex(LONG, rowWord + words + wi) >>> shift;
            long p2 = w.getAtIndex(LONG, rowWord + 2 * words + wi) >>> shift;
            long p3 = w.getAtIndex(LONG, rowWord + 3 * words + wi) >>> shift;
            int end = Math.min(n1, (j & ~15) + 16);
            for (; j < end; j++, p0 >>>= 4, p1 >>>= 4, p2 >>>= 4, p3 >>>= 4) {
                int b = lo + 16 * j;
                s += lut[b + (int) (p0 & 15)] + 2 * lut[b + (int) (p1 & 15)]
                        + 4 * lut[b + (int) (p2 & 15)] + 8 * lut[b + (int) (p3 & 15)];
            }
        }
        return s;
    }

    /** As {@link #int4Float}, on exact integer tables. */
    private static int int4Int(MemorySegment w, long rowWord, long words, int[] lut, int lo, int n0, int n1) {
        int s = 0;
        int j = n0;
        while (j < n1) {
            long wi = j >>> 4;
            int shift = (j & 15) * 4;
            long p0 = w.getAtIndex(LONG, rowWord + wi) >>> shift;
            long p1 = w.getAtIndex(LONG, rowWord + words + wi) >>> shift;
            long p2 = w.getAtIndex(LONG, rowWord + 2 * words + wi) >>> shift;
            long p3 = w.getAtIndex(LONG, rowWord + 3 * words + wi) >>> shift;
            int end = Math.min(n1, (j & ~15) + 16);
            for (; j < end; j++, p0 >>>= 4, p1 >>>= 4, p2 >>>= 4, p3 >>>= 4) {
                int b = lo + 16 * j;
                s += lut[b + (int) (p0 & 15)] + 2 * lut[b + (int) (p1 & 15)]
                        + 4 * lut[b + (int) (p2 & 15)] + 8 * lut[b + (int) (p3 & 15)];
            }
        }
        return s;
    }

    /** TERNARY: {@code S_mask - 2 S_sign} in one pass over both planes (sign ANDed with the mask, as the oracle). */
    private static float ternaryFloat(MemorySegment w, long rowWord, long words, float[] lut, int lo, int n0,
                                      int n1) {
        float s = 0;
        int j = n0;
        while (j < n1) {
            long wi = j >>> 4;
            int shift = (j & 15) * 4;
            long mask = w.getAtIndex(LONG, rowWord + wi) >>> shift;
            long sign = (w.getAtIndex(LONG, rowWord + words + wi) >>> shift) & mask;
            int end = Math.min(n1, (j & ~15) + 16);
            for (; j < end; j++, mask >>>= 4, sign >>>= 4) {
                int b = lo + 16 * j;
                s += lut[b + (int) (mask & 15)] - 2 * lut[b + (int) (sign & 15)];
            }
        }
        return s;
    }

    /** As {@link #ternaryFloat}, on exact integer tables. */
    private static int ternaryInt(MemorySegment w, long rowWord, long words, int[] lut, int lo, int n0, int n1) {
        int s = 0;
        int j = n0;
        while (j < n1) {
            long wi = j >>> 4;
            int shift = (j & 15) * 4;
            long mask = w.getAtIndex(LONG, rowWord + wi) >>> shift;
            long sign = (w.getAtIndex(LONG, rowWord + words + wi) >>> shift) & mask;
            int end = Math.min(n1, (j & ~15) + 16);
            for (; j < end; j++, mask >>>= 4, sign >>>= 4) {
                int b = lo + 16 * j;
                s += lut[b + (int) (mask & 15)] - 2 * lut[b + (int) (sign & 15)];
            }
        }
        return s;
    }

    /** Rows [r0, r1) for one token with float activations (tables already built). */
    static void rowsFloat(TensorSpec spec, MemorySegment w, float[] lut, int lo, float[] groupSums, int so,
                          float[] y, int yo, int r0, int r1) {
        Encoding e = spec.encoding();
        int planes = e.planes;
        long words = spec.wordsPerRow();
        int k = (int) spec.cols();
        int groups = (int) spec.groupsPerRow();
        int runs = (k + 3) / 4;
        int nibblesPerGroup = spec.groupSize() == 0 ? runs : spec.groupSize() / 4;
        for (int r = r0; r < r1; r++) {
            long rowWord = (long) r * planes * words;
            float sum = 0;
            for (int g = 0; g < groups; g++) {
                int n0 = g * nibblesPerGroup;
                int n1 = Math.min(runs, n0 + nibblesPerGroup);
                float x = groupSums[so + g];
                float acc = switch (e) {
                    case BINARY -> x - 2 * pickFloat(w, rowWord, lut, lo, n0, n1);
                    case TERNARY -> ternaryFloat(w, rowWord, words, lut, lo, n0, n1);
                    case INT4, INT4_ASYM -> {
                        float a = int4Float(w, rowWord, words, lut, lo, n0, n1);
                        yield e == Encoding.INT4 ? a - 8 * x : a;
                    }
                    default -> throw new IllegalStateException(e.toString());
                };
                long gi = (long) r * groups + g;
                sum += scale(spec, w, gi) * acc + (e == Encoding.INT4_ASYM ? min(spec, w, gi) * x : 0f);
            }
            y[yo + r] = sum;
        }
    }

    /**
     * Rows [r0, r1) for one token with INT8 activation codes: exact group sums, the oracle's float order. A twin of
     * {@link #rowsFloat} on int tables: float tables would be exact only while sums stay below 2^24, which INT4 with
     * large groups can exceed, and the integer path must match the oracle exactly.
     */
    static void rowsInt(TensorSpec spec, MemorySegment w, int[] lut, int lo, int[] groupSums, int so,
                        float tokenScale, float[] y, int yo, int r0, int r1) {
        Encoding e = spec.encoding();
        int planes = e.planes;
        long words = spec.wordsPerRow();
        int k = (int) spec.cols();
        int groups = (int) spec.groupsPerRow();
        int runs = (k + 3) / 4;
        int nibblesPerGroup = spec.groupSize() == 0 ? runs : spec.groupSize() / 4;
        for (int r = r0; r < r1; r++) {
            long rowWord = (long) r * planes * words;
            float sum = 0;
            for (int g = 0; g < groups; g++) {
                int n0 = g * nibblesPerGroup;
                int n1 = Math.min(runs, n0 + nibblesPerGroup);
                int x = groupSums[so + g];
                int acc = switch (e) {
                    case BINARY -> x - 2 * pickInt(w, rowWord, lut, lo, n0, n1);
                    case TERNARY -> ternaryInt(w, rowWord, words, lut, lo, n0, n1);
                    case INT4, INT4_ASYM -> {
                        int a = int4Int(w, rowWord, words, lut, lo, n0, n1);
                        yield e == Encoding.INT4 ? a - 8 * x : a;
                    }
                    default -> throw new IllegalStateException(e.toString());
                };
                long gi = (long) r * groups + g;
                sum += scale(spec, w, gi) * acc + (e == Encoding.INT4_ASYM ? min(spec, w, gi) * x : 0f);
            }
            y[yo + r] = sum * tokenScale;
        }
    }

    private static float scale(TensorSpec spec, MemorySegment w, long group) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, spec.scalesOffset() + 2 * group));
    }

    private static float min(TensorSpec spec, MemorySegment w, long group) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, spec.minsOffset() + 2 * group));
    }
}
