package io.bitplane.kernels;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Persistent worker threads that split a range of rows with the calling thread, which works too. A job is handed
 * over through fields, not queues, so a steady-state call allocates nothing. Calls from several threads at once
 * are serialized (one job at a time); small jobs should run on the caller alone (see {@link #worthSplitting}).
 */
public final class WorkerPool implements AutoCloseable {

    /** Work on rows [start, end). Implementations must be safe to run on several threads over disjoint ranges. */
    public interface RangeTask {
        void run(int start, int end);
    }

    /**
     * Below this many weights per call, waking a worker (tens of microseconds when it has parked) costs more than
     * the half of the work it takes over: a 512 x 64 classifier is about 10 microseconds of work.
     */
    private static final long MIN_WEIGHTS_TO_SPLIT = 1 << 18;

    /**
     * How long a waiting thread spins before it parks. Waking a parked thread took tens of microseconds here, as
     * long as a whole 256 x 2048 product, so both sides spin through the gaps of a decoding step (norms,
     * attention, sampling: well under this) and park only when the model is idle, until the next job.
     */
    private static final long SPIN_NANOS = 2_000_000;

    private final Thread[] workers;
    private final int threads;
    private final AtomicInteger pending = new AtomicInteger();
    private volatile long generation;
    private volatile boolean closed;
    private RangeTask task;
    private int rows;
    private volatile Thread caller;

    public WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, not " + threads);
        }
        this.threads = threads;
        this.workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            int slice = i + 1;
            workers[i] = new Thread(() -> work(slice), "bitplane-worker-" + slice);
            workers[i].setDaemon(true);
            workers[i].start();
        }
    }

    public int threads() {
        return threads;
    }

    /** The worker threads' states (for tests: an idle pool's workers must be parked, not spinning). */
    Thread.State[] workerStates() {
        Thread.State[] states = new Thread.State[workers.length];
        for (int i = 0; i < workers.length; i++) {
            states[i] = workers[i].getState();
        }
        return states;
    }

    public static boolean worthSplitting(long weights) {
        return weights >= MIN_WEIGHTS_TO_SPLIT;
    }

    /**
     * Whether attention over {@code batch} tokens, the largest at {@code maxPosition}, is worth splitting over this
     * pool: more than one thread and one (token, head) pair, and enough multiply-adds (the scores and the weighted
     * sums each take one per position and head value), as every CPU backend decides it.
     */
    public boolean worthSplittingAttention(AttentionShape s, int batch, int maxPosition) {
        long pairs = (long) batch * s.nHeads();
        return threads > 1 && pairs > 1 && worthSplitting(2L * pairs * (maxPosition + 1) * s.headSize());
    }

    /**
     * {@link #run(int, RangeTask)} where {@code split}, else {@code t} over all of [0, rows) on the calling thread
     * (work a backend judged too small to share), as {@link #runParts} takes its {@code split}.
     */
    public void run(int rows, RangeTask t, boolean split) {
        if (split) {
            run(rows, t);
        } else {
            t.run(0, rows);
        }
    }

    /** Runs {@code t} over rows [0, rows) split into one contiguous slice per thread; returns when all are done. */
    public synchronized void run(int rows, RangeTask t) {
        if (threads == 1 || rows < threads) {
            t.run(0, rows);
            return;
        }
        if (closed) {
            throw new IllegalStateException("worker pool is closed");
        }
        this.task = t;
        this.rows = rows;
        this.caller = Thread.currentThread();
        pending.set(workers.length);
        generation++; // publishes task and rows to the workers (volatile write)
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        RuntimeException failure = null;
        try {
            t.run(0, sliceEnd(0));
        } catch (RuntimeException e) {
            failure = e;
        }
        // The slices are even, so the workers usually finish within microseconds of the caller.
        for (long start = System.nanoTime(); pending.get() > 0 && System.nanoTime() - start < SPIN_NANOS; ) {
            Thread.onSpinWait();
        }
        while (pending.get() > 0) {
            LockSupport.parkNanos(this, 50_000);
        }
        this.task = null;
        if (failure != null) {
            throw failure;
        }
        if (workerFailure != null) {
            RuntimeException e = workerFailure;
            workerFailure = null;
            throw e;
        }
    }

    /**
     * One product of a job that runs several as one ({@link #runParts}): {@code rows} rows, handed out in units of
     * {@code unitRows} (a tile of rows, say; the last unit may run past the rows), {@code task} over a range of
     * units. Mutable, so that a backend can fill the same parts (and tasks) call after call: a new part, its array
     * and a lambda capturing the product's arguments were 72-112 bytes every product, where a steady-state call
     * should allocate nothing.
     */
    public static final class Part {
        private int rows;
        private int unitRows;
        private RangeTask task;

        /** An empty part, to be {@link #set} before it runs. */
        public Part() {
        }

        public Part(int rows, int unitRows, RangeTask task) {
            set(rows, unitRows, task);
        }

        /** Makes this part {@code rows} rows in units of {@code unitRows}, run by {@code task}; returns it. */
        public Part set(int rows, int unitRows, RangeTask task) {
            if (rows < 0 || unitRows < 1) {
                throw new IllegalArgumentException("a part of " + rows + " rows in units of " + unitRows);
            }
            this.rows = rows;
            this.unitRows = unitRows;
            this.task = task;
            return this;
        }

        public int rows() {
            return rows;
        }

        public int unitRows() {
            return unitRows;
        }
    }

    /** The parts of the job {@link #runParts} is running, read by {@link #partsSlice} on every thread. */
    private Part[] jobParts;
    private int jobCount;
    /** Runs a thread's slice of {@link #jobParts}: one task for every job, so that a job allocates none. */
    private final RangeTask partsSlice = (r0, r1) -> runSlice(jobParts, jobCount, r0, r1);

    /**
     * Runs the first {@code count} of {@code parts} as one job (the products of one input: q, k and v; gate and
     * up): their rows laid end to end are split into one slice per thread as {@link #run} splits rows, so small
     * products share the threads' start with large ones instead of each paying it, and each thread streams on
     * from one product into the next. {@code split} false runs everything on the calling thread.
     */
    public void runParts(Part[] parts, int count, boolean split) {
        int rows = 0;
        for (int i = 0; i < count; i++) {
            rows = Math.addExact(rows, parts[i].rows);
        }
        if (!split) {
            runSlice(parts, count, 0, rows);
            return;
        }
        synchronized (this) { // run() takes this lock too (reentrant): the job's parts stay until it ends
            jobParts = parts;
            jobCount = count;
            try {
                run(rows, partsSlice); // publishes jobParts and jobCount with the job
            } finally {
                jobParts = null;
            }
        }
    }

    /**
     * The units of the first {@code count} of {@code parts} (rows laid end to end) whose first row lies in [r0,
     * r1): slices that tile the rows run every unit exactly once.
     */
    static void runSlice(Part[] parts, int count, int r0, int r1) {
        int first = 0; // the part's first row among all parts' rows
        for (int i = 0; i < count; i++) {
            Part p = parts[i];
            int u0 = Math.ceilDiv(Math.max(r0 - first, 0), p.unitRows);
            int u1 = Math.ceilDiv(Math.clamp(r1 - first, 0, p.rows), p.unitRows);
            if (u0 < u1) {
                p.task.run(u0, u1);
            }
            first += p.rows;
        }
    }

    private volatile RuntimeException workerFailure;

    private int sliceEnd(int slice) {
        return (int) ((long) rows * (slice + 1) / threads);
    }

    private void work(int slice) {
        long seen = 0;
        while (!closed) {
            long g = generation;
            if (g == seen) {
                // Spin (a decoding step's products come back to back), then park until run() or close() unparks
                // this thread. (A timed park that went back to spinning kept an idle pool at 65% of a core per
                // worker, forever: an idle server burnt a core, and so did a bench's bandwidth measurement.)
                for (long start = System.nanoTime(); generation == seen && !closed
                        && System.nanoTime() - start < SPIN_NANOS; ) {
                    Thread.onSpinWait();
                }
                while (generation == seen && !closed) {
                    LockSupport.park(this); // run() publishes the generation before it unparks: no lost wake-up
                }
                continue;
            }
            seen = g;
            try {
                task.run((int) ((long) rows * slice / threads), sliceEnd(slice));
            } catch (RuntimeException e) {
                workerFailure = e;
            } finally {
                if (pending.decrementAndGet() == 0) {
                    LockSupport.unpark(caller);
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        for (Thread w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
