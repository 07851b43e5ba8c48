package io.bitplane.kernels.ffm;

import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * Attention on the C kernel ({@code bp_attention}, attention.c): a call's (token, KV head) groups, or its query
 * heads one by one, split over the pool's threads as the Java backend splits them, each thread's range one
 * downcall. The arrays (queries, the KV cache, outputs) are read in place through the critical handle; everything
 * the C code indexes is checked first ({@link #check}).
 *
 * <p>Steady-state calls allocate nothing: each thread's call object is reused, and the heap segments over the
 * arrays it has seen are kept, weakly ({@link HeapSegments}), so that a closed session's KV cache is not held.
 */
final class NativeAttention implements WorkerPool.RangeTask {
    private static final ThreadLocal<NativeAttention> CALLS = ThreadLocal.withInitial(NativeAttention::new);

    /** A decoding step's arrays: a KV cache of 2 x layers, queries, outputs, positions. */
    private final HeapSegments heap = new HeapSegments(64);
    private float[] scores = new float[0];
    private MemorySegment scoresSegment = MemorySegment.ofArray(scores);

    // One call's arguments, set by the calling thread, read by every thread of the call.
    private NativeKernels kernels;
    private MemorySegment q;
    private MemorySegment keys;
    private MemorySegment values;
    private MemorySegment out;
    private MemorySegment positions;
    private AttentionShape shape;
    private int unitHeads;
    private int scoresNeeded;

    /**
     * Attention for the whole batch on the calling thread, or split over {@code pool} when {@code split}: by
     * (token, KV head) groups, each reading its keys and values once for all its query heads, or where there are
     * fewer groups than threads (one KV head, one token) by query heads, so that every thread works; each head's
     * result is the same bit for bit either way. The arguments passed {@link #check}, which gave {@code
     * maxPosition}.
     */
    static void run(NativeKernels kernels, WorkerPool pool, boolean split, float[] out, float[] q, float[] keys,
                    float[] values, int[] positions, int batch, AttentionShape s, int maxPosition) {
        NativeAttention call = CALLS.get();
        call.kernels = kernels;
        call.q = call.heap.of(q);
        call.keys = call.heap.of(keys);
        call.values = call.heap.of(values);
        call.out = call.heap.of(out);
        call.positions = call.heap.of(positions);
        call.shape = s;
        int groups = batch * s.nKvHeads();
        call.unitHeads = split && groups < pool.threads() ? 1 : s.nHeads() / s.nKvHeads();
        call.scoresNeeded = call.unitHeads * (maxPosition + 1);
        int units = batch * s.nHeads() / call.unitHeads;
        try {
            if (split) {
                pool.run(units, call);
            } else {
                call.run(0, units);
            }
        } finally {
            call.kernels = null; // the segments keep their arrays: drop them until the next call
            call.q = call.keys = call.values = call.out = call.positions = null;
            call.shape = null;
        }
    }

    @Override
    public void run(int from, int to) {
        MemorySegment own = CALLS.get().scores(scoresNeeded); // this thread's scratch
        kernels.attention(q, keys, values, out, positions, shape.nHeads(), shape.nKvHeads(), shape.headSize(),
                unitHeads, from, to, own);
    }

    /** This thread's scores scratch, at least {@code floats} long. */
    private MemorySegment scores(int floats) {
        if (scores.length < floats) {
            scores = new float[Math.max(floats, 2 * scores.length)];
            scoresSegment = MemorySegment.ofArray(scores);
        }
        return scoresSegment;
    }

    /**
     * Checks everything the C kernel will index, naming what is wrong; returns the largest position of the batch.
     */
    static int check(float[] out, float[] q, float[] keys, float[] values, int[] positions, int batch,
                     AttentionShape s) {
        if (s.nHeads() < 1 || s.nKvHeads() < 1 || s.headSize() < 1 || s.nHeads() % s.nKvHeads() != 0) {
            throw new IllegalArgumentException("attention: " + s.nHeads() + " heads, " + s.nKvHeads()
                    + " KV heads of " + s.headSize() + " values (heads must be a positive multiple of KV heads)");
        }
        if (batch < 0 || positions.length < batch) {
            throw new IllegalArgumentException("attention: a batch of " + batch + " tokens with " + positions.length
                    + " positions");
        }
        long queries = (long) batch * s.nHeads() * s.headSize();
        if (q.length < queries || out.length < queries) {
            throw new IllegalArgumentException("attention: " + batch + " tokens of " + s.nHeads() + " x "
                    + s.headSize() + " need " + queries + " floats of queries and output, not " + q.length
                    + " and " + out.length);
        }
        long kvDim = (long) s.nKvHeads() * s.headSize();
        long cached = Math.min(keys.length, values.length) / kvDim;
        int max = 0;
        for (int b = 0; b < batch; b++) {
            if (positions[b] < 0 || positions[b] >= cached) {
                throw new IllegalArgumentException("attention: token " + b + " at position " + positions[b]
                        + ", where the KV cache holds positions 0 to " + (cached - 1));
            }
            max = Math.max(max, positions[b]);
        }
        return max;
    }
}
