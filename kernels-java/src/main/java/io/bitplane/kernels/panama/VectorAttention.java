package io.bitplane.kernels.panama;

import io.bitplane.kernels.AttentionShape;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention kernels for heads of a float vector or more ({@link SmallHeadAttention} takes shorter ones): scores, the
 * softmax and the weighted sums of values, head by head (PanamaBackend's overrides of ScalarBackend's steps) or by
 * (token, KV head) group, blocks of positions at a time ({@link #attendKvGroups}). {@link PanamaBackend} chooses
 * between them and splits the work over its pool.
 *
 * <pre>
 * KV cache (the decoder's): position t's keys at k[t * kvDim + kvHead * hs + d] for d below hs; values alike in v.
 * Queries: head h of token b at q[b * queryDim + h * hs + d]; the output alike in o.
 * Scores: att[t] = (fused multiply-add chain over the head's F vectors, lanes summed in a fixed order) / sqrt(hs).
 * Weighted sums: out_d = sum_t w_t v_td, every lane adding the positions in order, so that a head's result is the
 *   same bit for bit by heads or by groups.
 * </pre>
 */
final class VectorAttention {
    private VectorAttention() {
    }

    private static final VectorSpecies<Float> F = PanamaBackend.F;

    /**
     * Heads whose values do not fill whole F vectors (stories260K's 8 on AVX-512) end with one 256-bit vector when
     * 8 or more values are left, then value by value. Each kernel's species must be a constant: a species chosen
     * at run time (F or 256 bits, as this code once did) is no constant to C2, which then left every vector
     * operation of attention unintrinsified, 7-18x slower, in some JIT runs and not others; a species passed to a
     * helper method is a constant only if C2 inlines it, which it did not.
     */
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;

    /** Positions per block: a KV head's keys (or values) for 64 positions (16 KB for heads of 64) stay in L1. */
    private static final int KV_BLOCK = 64;
    private static final ThreadLocal<float[][]> GROUP_SCORES = ThreadLocal.withInitial(() -> new float[1][0]);

    /**
     * Attention for the (token, KV head) groups {@code [from, to)}, group i being token {@code i / nKvHeads}, KV
     * head {@code i % nKvHeads}, with the query heads that share that KV head taken together a block of positions
     * at a time: each block of keys and values is read from L2 or memory once and then from L1 by every query head,
     * where head by head a long context's keys and values (2 MB per layer of the 418M model at 1,024 positions)
     * came from L2 or beyond once per query head. Each score and each lane's order of additions are those of
     * the head-by-head path (ScalarBackend.attendHeads over PanamaBackend's scores, softmax and weighted
     * sums) (a sum carried from one block to the next is stored and reloaded exactly), so the
     * results are the same bit for bit.
     */
    static void attendKvGroups(float[] o, float[] qa, float[] k, float[] v, int[] positions, AttentionShape s,
                                int from, int to) {
        int hs = s.headSize();
        int kvDim = s.kvDim();
        int kvMul = s.nHeads() / s.nKvHeads();
        float norm = (float) Math.sqrt(hs);
        for (int g = from; g < to; g++) {
            int b = g / s.nKvHeads();
            int kvHead = g % s.nKvHeads();
            int kvo = kvHead * hs;
            int q0 = b * s.queryDim() + kvHead * kvMul * hs; // the group's first query head
            int count = positions[b] + 1;
            float[] att = PanamaBackend.threadFloats(GROUP_SCORES, kvMul * count);
            for (int t0 = 0; t0 < count; t0 += KV_BLOCK) {
                int n = Math.min(KV_BLOCK, count - t0);
                for (int j = 0; j < kvMul; j++) {
                    scoresAt(att, j * count + t0, qa, q0 + j * hs, k, t0 * kvDim + kvo, kvDim, n, hs, norm);
                }
            }
            for (int j = 0; j < kvMul; j++) {
                softmax(att, j * count, count);
            }
            for (int t0 = 0; t0 < count; t0 += KV_BLOCK) {
                int n = Math.min(KV_BLOCK, count - t0);
                int j = 0;
                for (; j + 2 <= kvMul; j += 2) {
                    weightedSumPairAt(o, q0 + j * hs, att, j * count + t0, count, n, v, t0 * kvDim + kvo, kvDim, hs,
                            t0 > 0);
                }
                if (j < kvMul) {
                    weightedSumAt(o, q0 + j * hs, att, j * count + t0, n, v, t0 * kvDim + kvo, kvDim, hs, t0 > 0);
                }
            }
        }
    }

    /**
     * {@code att[ao + t] = headDot(q[qo ..], k[t * stride + ko ..]) / norm} for t below count, heads of whole F
     * vectors: four positions at a time, four independent multiply-add chains instead of one (the chain's latency
     * bounded the one-position loop); each position's chain is exactly {@link #headDot}'s, so the scores are too.
     */
    static void scoresAt(float[] att, int ao, float[] q, int qo, float[] k, int ko, int stride, int count, int n,
                          float norm) {
        int t = 0;
        for (; t + 4 <= count; t += 4) {
            int k0 = t * stride + ko;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int i = 0; i < n; i += F.length()) {
                FloatVector qv = FloatVector.fromArray(F, q, qo + i);
                a0 = qv.fma(FloatVector.fromArray(F, k, k0 + i), a0);
                a1 = qv.fma(FloatVector.fromArray(F, k, k0 + stride + i), a1);
                a2 = qv.fma(FloatVector.fromArray(F, k, k0 + 2 * stride + i), a2);
                a3 = qv.fma(FloatVector.fromArray(F, k, k0 + 3 * stride + i), a3);
            }
            att[ao + t] = Lanes.sum(F, a0) / norm;
            att[ao + t + 1] = Lanes.sum(F, a1) / norm;
            att[ao + t + 2] = Lanes.sum(F, a2) / norm;
            att[ao + t + 3] = Lanes.sum(F, a3) / norm;
        }
        for (; t < count; t++) {
            att[ao + t] = headDot(q, qo, k, t * stride + ko, n) / norm;
        }
    }

    /** {@code sum_i a[ao + i] b[bo + i]} over n values, whole F vectors first, then at most one 256-bit one. */
    static float headDot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        float sum = 0f;
        if (n >= F.length()) {
            FloatVector acc = FloatVector.zero(F);
            for (; i + F.length() <= n; i += F.length()) {
                acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
            }
            sum = Lanes.sum(F, acc);
        }
        if (F.length() > F8.length() && i + F8.length() <= n) { // at most one: fewer than F.length() are left
            float part = Lanes.sum(F8, FloatVector.fromArray(F8, a, ao + i).mul(FloatVector.fromArray(F8, b, bo + i)));
            sum = i == 0 ? part : sum + part;
            i += F8.length();
        }
        for (; i < n; i++) {
            sum += a[ao + i] * b[bo + i];
        }
        return sum;
    }

    /**
     * {@code out[oo + i] = sum_t att[t] v[t * stride + vo + i]} over a head's whole F vectors and then, where F does
     * not divide the head (see F8), one 256-bit vector, positions in order in every lane; returns where the vectors
     * end, for the caller to finish value by value in the same order.
     */
    static int weightedSumVectors(float[] out, int oo, float[] att, int count, float[] v, int vo, int stride, int n) {
        int i = weightedSumAt(out, oo, att, 0, count, v, vo, stride, n, false);
        if (F.length() > F8.length() && i + F8.length() <= n) {
            FloatVector acc = FloatVector.zero(F8);
            for (int t = 0; t < count; t++) {
                acc = FloatVector.fromArray(F8, v, t * stride + vo + i).fma(FloatVector.broadcast(F8, att[t]), acc);
            }
            acc.intoArray(out, oo + i);
            i += F8.length();
        }
        return i;
    }

    /**
     * {@code out[oo + i] (+)= sum_t att[ao + t] v[t * stride + vo + i]} over the whole F vectors of a head, adding
     * to what {@code out} holds when {@code accumulate} (the next block of positions of {@link #attendKvGroups});
     * returns where the whole vectors end.
     */
    private static int weightedSumAt(float[] out, int oo, float[] att, int ao, int count, float[] v, int vo,
                                     int stride, int n, boolean accumulate) {
        int lanes = F.length();
        int i = 0;
        // Four slices of the head at once: four independent multiply-add chains instead of one (the chain's latency,
        // not the loads, bounded this loop). Each lane still adds the positions in order, so results are unchanged.
        for (; i + 4 * lanes <= n; i += 4 * lanes) {
            FloatVector a0 = accumulate ? FloatVector.fromArray(F, out, oo + i) : FloatVector.zero(F);
            FloatVector a1 = accumulate ? FloatVector.fromArray(F, out, oo + i + lanes) : FloatVector.zero(F);
            FloatVector a2 = accumulate ? FloatVector.fromArray(F, out, oo + i + 2 * lanes) : FloatVector.zero(F);
            FloatVector a3 = accumulate ? FloatVector.fromArray(F, out, oo + i + 3 * lanes) : FloatVector.zero(F);
            for (int t = 0; t < count; t++) {
                FloatVector w = FloatVector.broadcast(F, att[ao + t]);
                int at = t * stride + vo + i;
                a0 = FloatVector.fromArray(F, v, at).fma(w, a0);
                a1 = FloatVector.fromArray(F, v, at + lanes).fma(w, a1);
                a2 = FloatVector.fromArray(F, v, at + 2 * lanes).fma(w, a2);
                a3 = FloatVector.fromArray(F, v, at + 3 * lanes).fma(w, a3);
            }
            a0.intoArray(out, oo + i);
            a1.intoArray(out, oo + i + lanes);
            a2.intoArray(out, oo + i + 2 * lanes);
            a3.intoArray(out, oo + i + 3 * lanes);
        }
        for (; i + lanes <= n; i += lanes) {
            FloatVector acc = accumulate ? FloatVector.fromArray(F, out, oo + i) : FloatVector.zero(F);
            for (int t = 0; t < count; t++) {
                acc = FloatVector.fromArray(F, v, t * stride + vo + i).fma(FloatVector.broadcast(F, att[ao + t]), acc);
            }
            acc.intoArray(out, oo + i);
        }
        return i;
    }

    /**
     * {@link #weightedSumAt} for two heads that read the same values, their outputs {@code hs} apart and their
     * weights {@code attStride} apart: each value vector loaded serves both, and eight multiply-add chains run side
     * by side where four had waited on each one's latency. Each lane adds the positions in the same order as
     * {@link #weightedSumAt}, so the results are the same bit for bit. Heads of whole F vectors (as attendKvGroups
     * takes them); what is left past whole 4F vectors goes through {@link #weightedSumAt}, head by head. Measured
     * (32 heads, 4 KV heads of 64, 2 threads): 2,048 positions 277 -> 240 us a layer, 128 positions 20 -> 16.
     */
    private static void weightedSumPairAt(float[] out, int oo, float[] att, int ao, int attStride, int count,
                                          float[] v, int vo, int stride, int n, boolean accumulate) {
        int lanes = F.length();
        int i = 0;
        for (; i + 4 * lanes <= n; i += 4 * lanes) {
            int ob = oo + n + i;
            FloatVector a0 = accumulate ? FloatVector.fromArray(F, out, oo + i) : FloatVector.zero(F);
            FloatVector a1 = accumulate ? FloatVector.fromArray(F, out, oo + i + lanes) : FloatVector.zero(F);
            FloatVector a2 = accumulate ? FloatVector.fromArray(F, out, oo + i + 2 * lanes) : FloatVector.zero(F);
            FloatVector a3 = accumulate ? FloatVector.fromArray(F, out, oo + i + 3 * lanes) : FloatVector.zero(F);
            FloatVector b0 = accumulate ? FloatVector.fromArray(F, out, ob) : FloatVector.zero(F);
            FloatVector b1 = accumulate ? FloatVector.fromArray(F, out, ob + lanes) : FloatVector.zero(F);
            FloatVector b2 = accumulate ? FloatVector.fromArray(F, out, ob + 2 * lanes) : FloatVector.zero(F);
            FloatVector b3 = accumulate ? FloatVector.fromArray(F, out, ob + 3 * lanes) : FloatVector.zero(F);
            for (int t = 0; t < count; t++) {
                FloatVector wa = FloatVector.broadcast(F, att[ao + t]);
                FloatVector wb = FloatVector.broadcast(F, att[ao + attStride + t]);
                int at = t * stride + vo + i;
                FloatVector v0 = FloatVector.fromArray(F, v, at);
                FloatVector v1 = FloatVector.fromArray(F, v, at + lanes);
                FloatVector v2 = FloatVector.fromArray(F, v, at + 2 * lanes);
                FloatVector v3 = FloatVector.fromArray(F, v, at + 3 * lanes);
                a0 = v0.fma(wa, a0);
                a1 = v1.fma(wa, a1);
                a2 = v2.fma(wa, a2);
                a3 = v3.fma(wa, a3);
                b0 = v0.fma(wb, b0);
                b1 = v1.fma(wb, b1);
                b2 = v2.fma(wb, b2);
                b3 = v3.fma(wb, b3);
            }
            a0.intoArray(out, oo + i);
            a1.intoArray(out, oo + i + lanes);
            a2.intoArray(out, oo + i + 2 * lanes);
            a3.intoArray(out, oo + i + 3 * lanes);
            b0.intoArray(out, ob);
            b1.intoArray(out, ob + lanes);
            b2.intoArray(out, ob + 2 * lanes);
            b3.intoArray(out, ob + 3 * lanes);
        }
        if (i < n) {
            weightedSumAt(out, oo + i, att, ao, count, v, vo + i, stride, n - i, accumulate);
            weightedSumAt(out, oo + n + i, att, ao + attStride, count, v, vo + i, stride, n - i, accumulate);
        }
    }

    /**
     * Softmax with vector max, {@link VectorExp} and scaling. (The Vector API's own EXP is not used: SVML when
     * compiled, Math.exp when not, so warm and cold runs would differ.)
     */
    static void softmax(float[] x, int size) {
        softmax(x, 0, size);
    }

    /** Softmax of {@code x[offset .. offset + size)} in place. */
    static void softmax(float[] x, int offset, int size) {
        int upper = F.loopBound(size);
        FloatVector maxV = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        int i = 0;
        for (; i < upper; i += F.length()) {
            maxV = maxV.max(FloatVector.fromArray(F, x, offset + i));
        }
        float max = maxV.reduceLanes(VectorOperators.MAX);
        for (; i < size; i++) {
            max = Math.max(max, x[offset + i]);
        }
        FloatVector sumV = FloatVector.zero(F);
        for (i = 0; i < upper; i += F.length()) {
            FloatVector e = VectorExp.exp(FloatVector.fromArray(F, x, offset + i).sub(max));
            e.intoArray(x, offset + i);
            sumV = sumV.add(e);
        }
        float sum = Lanes.sum(F, sumV);
        for (; i < size; i++) {
            x[offset + i] = VectorExp.exp(x[offset + i] - max);
            sum += x[offset + i];
        }
        float inv = 1f / sum;
        for (i = 0; i < upper; i += F.length()) {
            FloatVector.fromArray(F, x, offset + i).mul(inv).intoArray(x, offset + i);
        }
        for (; i < size; i++) {
            x[offset + i] *= inv;
        }
    }
}
