package io.bitplane.opencl;

import org.lwjgl.system.MemoryStack;

import java.lang.ref.Cleaner;
import java.nio.IntBuffer;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

import static org.lwjgl.opencl.CL10.*;

/**
 * The device buffers of one backend. Every buffer is released exactly once: when the backend closes, or earlier
 * when the Java object that owned it became unreachable (a Cleaner), so short-lived buffers do not pile up on the
 * device. Sizes are checked against the device's limits before the driver is asked, so that a model too large
 * for the device is refused with a message that says how large, instead of failing at some later kernel.
 */
final class DeviceMemory {
    private static final Cleaner CLEANER = Cleaner.create();
    /** Buffers alive in this JVM, across backends: the leak test watches these. */
    static final AtomicLong LIVE_BUFFERS = new AtomicLong();
    static final AtomicLong LIVE_BYTES = new AtomicLong();

    private final long context;
    private final OpenClDevice device;
    private final Set<Handle> live = ConcurrentHashMap.newKeySet();
    private final AtomicLong heldBytes = new AtomicLong();

    /** Bytes this backend may hold: the device's memory, or less with {@code -Dbitplane.opencl.memory=MiB}. */
    private final long limit;

    DeviceMemory(long context, OpenClDevice device) {
        this.context = context;
        this.device = device;
        long cap = (long) (Double.parseDouble(System.getProperty("bitplane.opencl.memory", "0")) * (1 << 20));
        this.limit = cap > 0 ? Math.min(cap, device.globalMemoryBytes()) : device.globalMemoryBytes();
    }

    /** One cl_mem; {@link #release()} is idempotent and thread-safe. */
    final class Handle implements Runnable {
        final long mem;
        final long bytes;
        private final AtomicBoolean released = new AtomicBoolean();

        private Handle(long mem, long bytes) {
            this.mem = mem;
            this.bytes = bytes;
        }

        void release() {
            if (released.compareAndSet(false, true)) {
                clReleaseMemObject(mem);
                live.remove(this);
                heldBytes.addAndGet(-bytes);
                LIVE_BUFFERS.decrementAndGet();
                LIVE_BYTES.addAndGet(-bytes);
            }
        }

        @Override
        public void run() { // the Cleaner's action
            release();
        }
    }

    /** A new device buffer of {@code bytes} bytes for {@code what}, released by close or by its owner's Cleaner. */
    Handle allocate(long bytes, String what) {
        long size = Math.max(bytes, 4); // zero-sized buffers are invalid in OpenCL
        if (size > device.maxAllocationBytes()) {
            throw new IllegalStateException(String.format("%s needs %d MiB in one buffer; OpenCL device %s allows "
                    + "at most %d MiB per buffer", what, size >> 20, device.name(), device.maxAllocationBytes() >> 20));
        }
        if (heldBytes.get() + size > limit) {
            throw new IllegalStateException(String.format(java.util.Locale.ROOT, "OpenCL device %s has %s MiB%s; "
                    + "%s needs %s MiB more than the %s MiB already held", device.name(), mib(limit),
                    limit < device.globalMemoryBytes() ? " for Bitplane (-Dbitplane.opencl.memory)" : "", what,
                    mib(size), mib(heldBytes.get())));
        }
        long mem;
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            mem = clCreateBuffer(context, CL_MEM_READ_WRITE, size, err);
            if (err.get(0) != 0) {
                throw new OpenClException(String.format("OpenCL device %s could not allocate %d MiB for %s (%s)",
                        device.name(), size >> 20, what, OpenClException.errorName(err.get(0))), err.get(0));
            }
        }
        Handle h = new Handle(mem, size);
        live.add(h);
        heldBytes.addAndGet(size);
        LIVE_BUFFERS.incrementAndGet();
        LIVE_BYTES.addAndGet(size);
        return h;
    }

    /** Releases {@code h} when {@code owner} becomes unreachable (if close has not released it before). */
    static void releaseWhenUnreachable(Object owner, Handle h) {
        CLEANER.register(owner, h);
    }

    /** Whole MiB where that is exact enough, else one decimal (small models and caps). */
    private static String mib(long bytes) {
        return bytes >= 100L << 20 ? Long.toString(bytes >> 20) : String.format(java.util.Locale.ROOT, "%.1f",
                bytes / (double) (1 << 20));
    }

    long heldBytes() {
        return heldBytes.get();
    }

    /** Releases every buffer still held (the backend is closing). */
    void releaseAll() {
        for (Handle h : live.toArray(new Handle[0])) {
            h.release();
        }
    }
}
