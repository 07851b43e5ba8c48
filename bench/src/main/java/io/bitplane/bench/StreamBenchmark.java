package io.bitplane.bench;

import io.bitplane.kernels.WeightMemory;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The machine's read bandwidth, measured the way kernels read weights: vector loads streaming through native
 * memory much larger than the caches. Bytes per second = {@code megabytes} x 2^20 x ops/s. With {@code threads} > 1
 * (JMH -t), each thread reads its own buffer. The roofline of an encoding is then 8 x bandwidth / bits-per-weight,
 * the bandwidth being the faster of {@link #read} and {@link #nativeRead} (which prefetches; Java cannot).
 */
@State(Scope.Thread)
public class StreamBenchmark {
    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** The native library's read (bp_stream_read), or null where it does not load. */
    private static final java.util.function.ToLongFunction<MemorySegment> NATIVE =
            io.bitplane.kernels.Backends.streamReader().orElse(null);

    @Param({"256"})
    public int megabytes;

    private Arena arena;
    private MemorySegment data;

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        data = WeightMemory.allocate(arena, (long) megabytes << 20);
        for (long i = 0; i < data.byteSize(); i += 8) {
            data.set(java.lang.foreign.ValueLayout.JAVA_LONG, i, i);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public long read() {
        LongVector a0 = LongVector.zero(L);
        LongVector a1 = LongVector.zero(L);
        long step = L.vectorByteSize();
        for (long off = 0; off < data.byteSize(); off += 2 * step) {
            a0 = a0.add(LongVector.fromMemorySegment(L, data, off, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(LongVector.fromMemorySegment(L, data, off + step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).reduceLanes(VectorOperators.ADD);
    }

    /**
     * The same bytes read by the native library's loop, which prefetches as the native kernels do (on an Intel Xeon,
     * two threads, it read 13% more than a C loop without prefetches); where the library does not load, {@link #read}.
     */
    @Benchmark
    public long nativeRead() {
        return NATIVE != null ? NATIVE.applyAsLong(data) : read();
    }
}
