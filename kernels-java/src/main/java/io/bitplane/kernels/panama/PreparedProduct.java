package io.bitplane.kernels.panama;

import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.WorkerPool;

import java.lang.foreign.MemorySegment;

/**
 * One matrix product's arguments as its kernel reads them: prepared on the calling thread (activations quantized,
 * tables built into that thread's arrays), then read by every thread that runs a range of the product's units;
 * the lookup tables of the tiles, larger than the codes or activations they come from, each such thread builds
 * for itself (PanamaBackend#ownTables).
 * <p>
 * Each calling thread fills its own of these ({@link #forThread}) call after call, and each kernel is a lambda
 * that captures nothing (one object for all calls), so a steady-state product allocates nothing. Before, every
 * product made a lambda capturing its arguments, a {@link WorkerPool.Part} and an array of parts: 72-112 bytes a
 * call, the garbage of a server's every token. A kernel reads only the fields its preparation set; the others
 * may hold an earlier call's arrays.
 */
final class PreparedProduct implements WorkerPool.RangeTask {

    /** A kernel over units [from, to) of a prepared product. Must capture nothing. */
    @FunctionalInterface
    interface Kernel {
        void run(PreparedProduct p, int from, int to);
    }

    /** This product as a part of the pool's job, running {@link #run}. */
    final WorkerPool.Part part = new WorkerPool.Part();
    Kernel kernel;
    TensorSpec spec;
    /** The uploaded weights; a kernel casts them to the kind it was chosen for. */
    Weights weights;
    /** The tensor's bytes as uploaded (the file's layout). */
    MemorySegment data;
    float[] x;
    float[] y;
    int batch;

    // The activations as the kernel reads them (codes, lookup tables, sign words), in whichever of these fits.
    short[] shorts;
    int[] ints;
    float[] floats;
    byte[] bytes;
    long[] longs;
    /** Sums over groups of codes (integer activations) or of activations (float ones), where the kernel wants them. */
    int[] intSums;
    float[] floatSums;
    /** Each token's activation scale (INT8 and binary activations). */
    float[] scales;
    /** The job this product's inputs were prepared for: a thread builds its own tables once a job. */
    long job;

    @Override
    public void run(int from, int to) {
        kernel.run(this, from, to);
    }

    /**
     * Makes this product {@code like}'s kernel and inputs over other weights {@code w} of the same kind and width
     * (whose bytes as uploaded are {@code data}), writing {@code y}: a job's products of one input share what the
     * first one's preparation made of it.
     */
    void shareInputs(PreparedProduct like, Weights w, MemorySegment data, float[] y) {
        kernel = like.kernel;
        spec = w.spec();
        weights = w;
        this.data = data;
        x = like.x;
        this.y = y;
        batch = like.batch;
        shorts = like.shorts;
        ints = like.ints;
        floats = like.floats;
        bytes = like.bytes;
        longs = like.longs;
        intSums = like.intSums;
        floatSums = like.floatSums;
        scales = like.scales;
        job = like.job;
        units(like.part.unitRows());
    }

    /** Sets the product's part: {@code unitRows} rows a unit. */
    void units(int unitRows) {
        part.set((int) spec.rows(), unitRows, this);
    }

    /**
     * Drops this product's references to the weights and the caller's buffers (the thread's own arrays stay, for the
     * next call): a thread's products outlive the model, which must not be kept from the garbage collector by them.
     */
    void release() {
        weights = null;
        data = null;
        x = null;
        y = null;
    }

    /** The calling thread's products and their parts, grown to hold at least {@code count}. */
    static Set forThread(int count) {
        Set s = SETS.get();
        if (s.products.length < count) {
            s.products = new PreparedProduct[count];
            s.parts = new WorkerPool.Part[count];
            for (int i = 0; i < count; i++) {
                s.products[i] = new PreparedProduct();
                s.parts[i] = s.products[i].part;
            }
        }
        return s;
    }

    /** One calling thread's products, and the same products' parts, in order, for {@link WorkerPool#runParts}. */
    static final class Set {
        PreparedProduct[] products = new PreparedProduct[0];
        WorkerPool.Part[] parts = new WorkerPool.Part[0];

        /** {@link #release} for the first {@code count} products. */
        void release(int count) {
            for (int i = 0; i < count; i++) {
                products[i].release();
            }
        }
    }

    private static final ThreadLocal<Set> SETS = ThreadLocal.withInitial(Set::new);
}
