package io.bitplane.kernels.ffm;

import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ArrayBuffer;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

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
    // The caches of run i (columns from runStarts[i]): one run for a call over one cache. MemorySegments in
    // Object[]s: C2 (JDK 25) guesses that an array of an interface type is exactly that type and traps at every
    // store site into one the first time it runs, sending the method back to be compiled again (docs/PERFORMANCE.md,
    // "What `bitplane bench` itself got wrong"); an Object[] it gets right.
    private Object[] runKeys = new Object[1];
    private Object[] runValues = new Object[1];
    private int[] runStarts;
    private final int[] oneRun = new int[2];
    private int runs;
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
        call.oneRun[1] = batch;
        call.runKeys[0] = call.heap.of(keys);
        call.runValues[0] = call.heap.of(values);
        int groups = batch * s.nKvHeads();
        int unitHeads = split && groups < pool.threads() ? 1 : s.nHeads() / s.nKvHeads();
        call.go(kernels, pool, split, out, q, positions, call.oneRun, 1, s, unitHeads, maxPosition);
    }

    /**
     * Runs of columns over caches of their own ({@link io.bitplane.kernels.Backend#attentionOfRuns}): every run's
     * (token, KV head) groups split over the pool in one go, each thread's share one downcall a run it touches. The
     * arguments passed {@link #check}, run by run.
     */
    static void runs(NativeKernels kernels, WorkerPool pool, boolean split, float[] out, float[] q, Buffer[] keys,
                     Buffer[] values, int[] positions, int[] runStarts, int runs, AttentionShape s, int maxPosition) {
        NativeAttention call = CALLS.get();
        if (call.runKeys.length < runs) {
            call.runKeys = new Object[runs];
            call.runValues = new Object[runs];
        }
        for (int i = 0; i < runs; i++) {
            call.runKeys[i] = call.heap.of(ArrayBuffer.of(keys[i]));
            call.runValues[i] = call.heap.of(ArrayBuffer.of(values[i]));
        }
        call.go(kernels, pool, split, out, q, positions, runStarts, runs, s, s.nHeads() / s.nKvHeads(), maxPosition);
    }

    private void go(NativeKernels kernels, WorkerPool pool, boolean split, float[] out, float[] q, int[] positions,
                    int[] runStarts, int runs, AttentionShape s, int unitHeads, int maxPosition) {
        this.kernels = kernels;
        this.q = heap.of(q);
        this.out = heap.of(out);
        this.positions = heap.of(positions);
        this.shape = s;
        this.runStarts = runStarts;
        this.runs = runs;
        this.unitHeads = unitHeads;
        scoresNeeded = unitHeads * (maxPosition + 1);
        int units = runStarts[runs] * s.nHeads() / unitHeads;
        try {
            pool.run(units, this, split);
        } finally {
            this.kernels = null; // the segments keep their arrays: drop them until the next call
            this.q = this.out = this.positions = null;
            Arrays.fill(runKeys, 0, runs, null);
            Arrays.fill(runValues, 0, runs, null);
            this.runStarts = null;
            this.shape = null;
        }
    }

    @Override
    public void run(int from, int to) {
        MemorySegment own = CALLS.get().scores(scoresNeeded); // this thread's scratch
        int unitsPerColumn = shape.nHeads() / unitHeads;
        for (int i = 0; i < runs; i++) {
            int lo = Math.max(from, runStarts[i] * unitsPerColumn);
            int hi = Math.min(to, runStarts[i + 1] * unitsPerColumn);
            if (lo < hi) {
                kernels.attention(q, (MemorySegment) runKeys[i], (MemorySegment) runValues[i], out, positions,
                        shape.nHeads(), shape.nKvHeads(), shape.headSize(), unitHeads, lo, hi, own);
            }
        }
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
        return check(out, q, keys, values, positions, 0, batch, s);
    }

    /** As {@link #check(float[], float[], float[], float[], int[], int, AttentionShape)}, for columns [from, to). */
    static int check(float[] out, float[] q, float[] keys, float[] values, int[] positions, int from, int to,
                     AttentionShape s) {
        int batch = to;
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
        for (int b = from; b < batch; b++) {
            if (positions[b] < 0 || positions[b] >= cached) {
                throw new IllegalArgumentException("attention: token " + b + " at position " + positions[b]
                        + ", where the KV cache holds positions 0 to " + (cached - 1));
            }
            max = Math.max(max, positions[b]);
        }
        return max;
    }
}
