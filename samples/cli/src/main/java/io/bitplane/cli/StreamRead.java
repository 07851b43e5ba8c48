package io.bitplane.cli;

import io.bitplane.kernels.WeightMemory;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.concurrent.atomic.DoubleAdder;

/**
 * Read bandwidth as kernels see it: each thread streams vector loads through its own native buffer, much larger
 * than the caches, and the threads' rates are added. Warm-up passes (page faults, compilation) are not counted.
 * The roofline of an encoding is 8 x this / bits per weight.
 * <p>
 * The loop is the native library's where it loads (Backends#streamReader), else this class's Java loop. The native
 * one prefetches as the native kernels do, which Java has no instruction for: on an Intel Xeon (2 threads) it read
 * 31.5-33.5 GB/s where the Java loop read 27-28, and native kernels measured against the Java loop's roofline read
 * up to 110% of it. The machine's bandwidth is what its best loop reads.
 * <p>
 * The buffers come from {@link WeightMemory}, as the backends' repacked weights and the bench's weights do: in huge
 * pages where Linux gives them (on that Xeon, a virtual machine, 36-39 GB/s against 31-33 in 4 KB pages).
 */
final class StreamRead {
    private StreamRead() {
    }

    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** Past any cache, even one thread's (see BenchCommand#WORKING_SET: a 480 MB L3 served 256 MB in part). */
    private static final long BYTES_PER_THREAD = 512L << 20;
    /** Where the sums go, so that the loads cannot be optimised away. */
    static volatile long sink;

    /** The native library's read, or empty (then {@link #pass}). */
    private static final java.util.Optional<java.util.function.ToLongFunction<MemorySegment>> NATIVE =
            io.bitplane.kernels.Backends.streamReader();

    /** Which loop measures the bandwidth, for the report. */
    static String loop() {
        return NATIVE.isPresent() ? "native (prefetching)" : "java";
    }

    private static long read(MemorySegment data) {
        return NATIVE.isPresent() ? NATIVE.get().applyAsLong(data) : pass(data);
    }

    /**
     * Bandwidth measured beside a run of {@code runSeconds} (just before it, and again just after), for a third as
     * long (at least 0.1 s): this machine's drifts from minute to minute, so each run gets its own.
     */
    static double besideRun(int threads, double runSeconds) throws InterruptedException {
        return bytesPerSecond(threads, Math.max(0.1, runSeconds / 3));
    }

    /**
     * The bandwidth of a run's roofline from the measurements just before and just after it: the higher. The
     * machine's bandwidth moves in phases (46 to 85 GB/s within one chart's run), and a kernel timed in a fast phase
     * against a slow one's bandwidth read above 100% of its roofline (ternary 102%, binary 94% at 46-52 GB/s, where
     * 73-85 GB/s gave 55-79%).
     */
    static double ofRun(double before, double after) {
        return Math.max(before, after);
    }

    /**
     * Each thread's buffer, kept from one measurement to the next (a bench measures before every kernel): allocating,
     * filling and first passing 512 MB per thread cost more than the measurement.
     */
    private static final java.util.List<MemorySegment> BUFFERS = new java.util.ArrayList<>();

    private static synchronized MemorySegment[] buffers(int threads) {
        while (BUFFERS.size() < threads) {
            MemorySegment data = WeightMemory.COLLECTED.allocate(BYTES_PER_THREAD);
            data.fill((byte) 1);
            BUFFERS.add(data);
        }
        return BUFFERS.subList(0, threads).toArray(new MemorySegment[0]);
    }

    private static synchronized double bytesPerSecond(int threads, double seconds) throws InterruptedException {
        boolean firstUse = BUFFERS.size() < threads; // new buffers: page faults and the JIT come first
        MemorySegment[] buffers = buffers(threads);
        DoubleAdder rate = new DoubleAdder();
        java.util.concurrent.CyclicBarrier ready = new java.util.concurrent.CyclicBarrier(threads);
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            MemorySegment data = buffers[t];
            workers[t] = new Thread(() -> {
                long acc = 0;
                for (int i = 0; i < (firstUse ? 4 : 1); i++) {
                    acc += read(data); // page faults and JIT compilation happen here, untimed
                }
                await(ready);
                long start = System.nanoTime();
                long end = start + (long) (seconds * 1e9);
                long read = 0;
                long now;
                do {
                    acc += read(data);
                    read += data.byteSize();
                    now = System.nanoTime();
                } while (now < end);
                rate.add(read / ((now - start) / 1e9));
                sink += acc;
            });
            workers[t].start();
        }
        for (Thread w : workers) {
            w.join();
        }
        return rate.sum();
    }

    private static void await(java.util.concurrent.CyclicBarrier barrier) {
        try {
            barrier.await();
        } catch (InterruptedException | java.util.concurrent.BrokenBarrierException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static long pass(MemorySegment data) {
        LongVector a0 = LongVector.zero(L);
        LongVector a1 = LongVector.zero(L);
        long step = L.vectorByteSize();
        for (long off = 0; off + 2 * step <= data.byteSize(); off += 2 * step) {
            a0 = a0.add(LongVector.fromMemorySegment(L, data, off, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(LongVector.fromMemorySegment(L, data, off + step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).reduceLanes(VectorOperators.ADD);
    }
}
