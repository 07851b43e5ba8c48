package io.bitplane.kernels.panama;

import io.bitplane.kernels.AttentionShape;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention for heads shorter than a float vector (stories260K's heads of 8 values against AVX-512's 16 lanes),
 * with positions in the lanes instead of a head's values.
 *
 * <pre>
 * KV cache (the decoder's): position t's keys at k[t * kvDim + kvHead * hs + d] for d below hs; values alike in v.
 * Queries: head h of token b at q[b * queryDim + h * hs + d]; the output alike in o.
 * Score lanes: lane i of a vector holds position t + i; a KV head's column d is read down the positions by a gather
 *   (indices i * kvDim), so no vector is summed across its lanes per position, as the head-by-head kernels did.
 * Scores: s_t = (fused multiply-add chain from 0 over d in order of k_td q_d) / sqrt(hs); positions past whole
 *   vectors take the same chain in Math.fma, so a score's bits do not depend on the lane its position falls in.
 * Weighted sums: out_d = sum_t w_t v_td in the head's hs lanes: each position's values one masked load, times its
 *   broadcast weight, in four chains by position (two for a pair of heads), added at the end. Another order than
 *   the scalar reference's: equal within rounding, and the same for a token whatever batch it comes in. (Gathering
 *   these down the positions too, as the scores are, ran 1.25-1.3x slower: docs/PERFORMANCE.md.)
 * </pre>
 * The query heads that share a KV head go two at a time, so that each gathered or loaded vector serves both.
 */
final class SmallHeadAttention {
    private SmallHeadAttention() {
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    /** Scores of a group's heads, and the gather indices {@code i * kvDim} (rebuilt when kvDim changes). */
    private static final ThreadLocal<float[][]> SCORES = ThreadLocal.withInitial(() -> new float[1][0]);
    private static final ThreadLocal<int[]> STRIDES = ThreadLocal.withInitial(() -> new int[L]);

    /** Heads this kernel takes: fewer values than a float vector has lanes. */
    static boolean suits(AttentionShape s) {
        return s.headSize() < L;
    }

    /**
     * Attention for the (token, KV head) groups {@code [from, to)}, group g being token {@code g / nKvHeads}, KV head
     * {@code g % nKvHeads}, with the query heads that share that KV head. Groups are independent: threads may take
     * disjoint ranges.
     */
    static void attend(float[] o, float[] q, float[] k, float[] v, int[] positions, AttentionShape s, int from,
                       int to) {
        int hs = s.headSize();
        int kvDim = s.kvDim();
        int kvMul = s.nHeads() / s.nKvHeads();
        float norm = (float) Math.sqrt(hs);
        int[] strides = strides(kvDim);
        for (int g = from; g < to; g++) {
            int b = g / s.nKvHeads();
            int kvo = (g % s.nKvHeads()) * hs;
            int q0 = b * s.queryDim() + (g % s.nKvHeads()) * kvMul * hs; // the group's first query head
            int count = positions[b] + 1;
            float[] att = scores(kvMul * count);
            int j = 0;
            for (; j + 2 <= kvMul; j += 2) {
                scorePair(att, j * count, count, q, q0 + j * hs, k, kvo, kvDim, hs, norm, strides);
            }
            if (j < kvMul) {
                score(att, j * count, count, q, q0 + j * hs, k, kvo, kvDim, hs, norm, strides);
            }
            for (j = 0; j < kvMul; j++) {
                VectorAttention.softmax(att, j * count, count);
            }
            for (j = 0; j + 2 <= kvMul; j += 2) {
                weighPair(o, q0 + j * hs, att, j * count, count, v, kvo, kvDim, hs);
            }
            if (j < kvMul) {
                weigh(o, q0 + j * hs, att, j * count, count, v, kvo, kvDim, hs);
            }
        }
    }

    /** {@code att[ao + t]}: the scores of the query head at {@code q[qo..]} for positions below count. */
    private static void score(float[] att, int ao, int count, float[] q, int qo, float[] k, int kvo, int kvDim,
                              int hs, float norm, int[] strides) {
        int t = 0;
        for (; t + L <= count; t += L) {
            int at = t * kvDim + kvo;
            FloatVector acc = FloatVector.zero(F);
            for (int d = 0; d < hs; d++) {
                acc = FloatVector.fromArray(F, k, at + d, strides, 0).fma(FloatVector.broadcast(F, q[qo + d]), acc);
            }
            acc.div(norm).intoArray(att, ao + t);
        }
        for (; t < count; t++) {
            att[ao + t] = scoreAt(q, qo, k, t * kvDim + kvo, hs) / norm;
        }
    }

    /** {@link #score} for two query heads ({@code hs} apart, their scores {@code count} apart) at once. */
    private static void scorePair(float[] att, int ao, int count, float[] q, int qo, float[] k, int kvo, int kvDim,
                                  int hs, float norm, int[] strides) {
        int t = 0;
        for (; t + L <= count; t += L) {
            int at = t * kvDim + kvo;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            for (int d = 0; d < hs; d++) {
                FloatVector kd = FloatVector.fromArray(F, k, at + d, strides, 0);
                a0 = kd.fma(FloatVector.broadcast(F, q[qo + d]), a0);
                a1 = kd.fma(FloatVector.broadcast(F, q[qo + hs + d]), a1);
            }
            a0.div(norm).intoArray(att, ao + t);
            a1.div(norm).intoArray(att, ao + count + t);
        }
        for (; t < count; t++) {
            att[ao + t] = scoreAt(q, qo, k, t * kvDim + kvo, hs) / norm;
            att[ao + count + t] = scoreAt(q, qo + hs, k, t * kvDim + kvo, hs) / norm;
        }
    }

    /** One position's score before the norm, as one lane of {@link #score} computes it. */
    private static float scoreAt(float[] q, int qo, float[] k, int ko, int hs) {
        float acc = 0f;
        for (int d = 0; d < hs; d++) {
            acc = Math.fma(k[ko + d], q[qo + d], acc);
        }
        return acc;
    }

    /**
     * {@code o[oo + d] = sum_t att[ao + t] v[t * kvDim + kvo + d]} for d below hs: one head's output. A position's
     * values are one masked load (the head's hs lanes), times its broadcast weight, in four chains (positions t
     * modulo 4) so that no chain waits on the last one's latency; the chains add at the end.
     */
    private static void weigh(float[] o, int oo, float[] att, int ao, int count, float[] v, int kvo, int kvDim,
                              int hs) {
        VectorMask<Float> head = F.indexInRange(0, hs);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int t = 0;
        for (; t + 4 <= count; t += 4) {
            int at = t * kvDim + kvo;
            a0 = FloatVector.fromArray(F, v, at, head).fma(FloatVector.broadcast(F, att[ao + t]), a0);
            a1 = FloatVector.fromArray(F, v, at + kvDim, head).fma(FloatVector.broadcast(F, att[ao + t + 1]), a1);
            a2 = FloatVector.fromArray(F, v, at + 2 * kvDim, head).fma(FloatVector.broadcast(F, att[ao + t + 2]), a2);
            a3 = FloatVector.fromArray(F, v, at + 3 * kvDim, head).fma(FloatVector.broadcast(F, att[ao + t + 3]), a3);
        }
        for (; t < count; t++) {
            a0 = FloatVector.fromArray(F, v, t * kvDim + kvo, head).fma(FloatVector.broadcast(F, att[ao + t]), a0);
        }
        a0.add(a1).add(a2.add(a3)).intoArray(o, oo, head);
    }

    /** {@link #weigh} for two query heads (outputs {@code hs} apart, weights {@code count} apart) at once. */
    private static void weighPair(float[] o, int oo, float[] att, int ao, int count, float[] v, int kvo, int kvDim,
                                  int hs) {
        VectorMask<Float> head = F.indexInRange(0, hs);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F);
        FloatVector b1 = FloatVector.zero(F);
        int bo = ao + count;
        int t = 0;
        for (; t + 2 <= count; t += 2) {
            int at = t * kvDim + kvo;
            FloatVector v0 = FloatVector.fromArray(F, v, at, head);
            FloatVector v1 = FloatVector.fromArray(F, v, at + kvDim, head);
            a0 = v0.fma(FloatVector.broadcast(F, att[ao + t]), a0);
            b0 = v0.fma(FloatVector.broadcast(F, att[bo + t]), b0);
            a1 = v1.fma(FloatVector.broadcast(F, att[ao + t + 1]), a1);
            b1 = v1.fma(FloatVector.broadcast(F, att[bo + t + 1]), b1);
        }
        if (t < count) {
            FloatVector v0 = FloatVector.fromArray(F, v, t * kvDim + kvo, head);
            a0 = v0.fma(FloatVector.broadcast(F, att[ao + t]), a0);
            b0 = v0.fma(FloatVector.broadcast(F, att[bo + t]), b0);
        }
        a0.add(a1).intoArray(o, oo, head);
        b0.add(b1).intoArray(o, oo + hs, head);
    }

    private static float[] scores(int length) {
        float[][] h = SCORES.get();
        if (h[0].length < length) {
            h[0] = new float[length];
        }
        return h[0];
    }

    /** The calling thread's gather indices {@code i * kvDim} for the lanes. */
    private static int[] strides(int kvDim) {
        int[] strides = STRIDES.get();
        if (strides[1] != kvDim) {
            for (int i = 0; i < L; i++) {
                strides[i] = i * kvDim;
            }
        }
        return strides;
    }
}
