package io.bitplane.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.function.Supplier;

/**
 * Native memory for weights a backend keeps (repacked tiles, copies of a model's tensors): zeroed, 64-byte aligned,
 * and on Linux backed by transparent huge pages where the system offers them only on request ({@code madvise},
 * Debian's and Ubuntu's default). A backend allocates from a {@link #closeable()} instance and closes it with
 * itself, so that closing a model returns its weights' memory at once; {@link #COLLECTED} frees each allocation
 * when it is unreachable instead, for code that owns no backend.
 *
 * <p>Why not leave a backend's weights to the collector too: a collection frees native memory only when the heap
 * asks for one, and an application that swaps models while allocating little on the heap kept every model it had
 * closed until then (the 418M W4A8 model, opened and closed three times in turn: 0.73 GB of tiles still mapped).
 *
 * <p>Why huge pages: a decoding step streams every weight once, and with 4 KB pages each page of a stream costs a
 * TLB miss, which in a virtual machine walks two page tables. On the Intel Xeon VM of these sessions a C read loop
 * over 512 MB per thread (two threads) read 26-31 GB/s in 4 KB pages and 36-39 GB/s in 2 MB pages; one thread 16.4
 * against 20.0 (docs/PERFORMANCE.md, "Weights in huge pages").
 *
 * <p>The memory is mapped with {@code mmap} and advised before anything touches it, so that its first writes fault
 * in whole 2 MB pages: {@code Arena.allocate} zeroes what it allocates, after which an advice would leave the
 * pages small until the kernel's background collapse, minutes later. Every allocation from {@link #MIN_SLAB_BYTES}
 * up is carved out of shared mappings advised whole ("slabs", see {@link Slabs}), so that a tensor's last part is
 * in huge pages too, and the huge page it ends in holds the start of the next. Where that is not possible (another
 * OS or architecture, a small allocation, native access not enabled for this code, a failed call) the memory comes
 * from an arena as before: huge pages change speed, never results.
 */
public final class WeightMemory implements AutoCloseable {

    /** The huge page size of x86-64 and of most arm64 kernels; allocations are aligned to it. */
    static final long HUGE_PAGE = 2L << 20;

    /**
     * From this size up, allocations are carved one after another out of shared mappings advised whole
     * ({@link Slabs}). The 418M model's attention products (2.4 MB a 2048 x 2048 INT4 matrix, 0.3 MB its keys' and
     * values') read at 18-20 GB/s in a decoding step from their own 4 KB pages against 25-27 from 2 MB pages (the
     * large products' 28-30). Below it a few 4 KB pages cost little.
     */
    static final long MIN_SLAB_BYTES = 64L << 10;

    /**
     * A slab: large enough that its last, partly used huge page (backed whole, up to 2 MB unused) is a small part
     * of it, small enough that the newest one, kept for the next allocation, holds little.
     */
    static final long SLAB_BYTES = 32L << 20;

    /** Linux's values on x86-64 and arm64 (other architectures differ: there the memory comes from the arena). */
    private static final int PROT_READ = 1;
    private static final int PROT_WRITE = 2;
    private static final int MAP_PRIVATE = 2;
    private static final int MAP_ANONYMOUS = 0x20;
    private static final int MADV_HUGEPAGE = 14;

    /** mmap, madvise and munmap from the C library, or empty where they cannot be used (see the class comment). */
    private static final Optional<Calls> CALLS = Calls.find();

    /** Each allocation freed when unreachable (a slab's memory when none of its pieces is, save the newest slab). */
    public static final WeightMemory COLLECTED = new WeightMemory(null);

    /** The arena that frees everything at {@link #close()}, or null for {@link #COLLECTED}. */
    private final Arena owner;
    private final Slabs slabs;

    private WeightMemory(Arena owner) {
        this.owner = owner;
        this.slabs = new Slabs(SLAB_BYTES, owner == null ? Arena::ofAuto : () -> owner);
    }

    /** Memory freed all at once by {@link #close()} (any thread may allocate from it, and use what it gets). */
    public static WeightMemory closeable() {
        return new WeightMemory(Arena.ofShared());
    }

    /** Whether large allocations are asked for huge pages here (the system may still decline). */
    public static boolean hugePagesRequested() {
        return CALLS.isPresent();
    }

    /**
     * How much of this process's anonymous memory the system backs with huge pages now (AnonHugePages of
     * /proc/self/smaps_rollup), or empty where that cannot be read: what {@link #hugePagesRequested} got.
     */
    public static OptionalLong hugePageBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/smaps_rollup"))) {
                if (line.startsWith("AnonHugePages:")) {
                    return OptionalLong.of(1024 * Long.parseLong(line.replaceAll("[^0-9]", "")));
                }
            }
        } catch (IOException | RuntimeException e) { // not Linux, or an older kernel without the rollup
            return OptionalLong.empty();
        }
        return OptionalLong.empty();
    }

    /**
     * {@code bytes} of zeroed native memory, 64-byte aligned, freed at {@link #close()} (for {@link #COLLECTED}: when
     * the segment is unreachable).
     *
     * @throws IllegalStateException if this memory is closed
     */
    public MemorySegment allocate(long bytes) {
        if (owner != null && !owner.scope().isAlive()) {
            throw new IllegalStateException("weight memory is closed (its backend was closed)");
        }
        if (bytes >= MIN_SLAB_BYTES) {
            MemorySegment s = slabs.take(bytes); // null where huge pages are not requested
            if (s != null) {
                return s;
            }
        }
        return allocate(owner != null ? owner : Arena.ofAuto(), bytes);
    }

    /**
     * Frees every allocation at once; using one after throws {@link IllegalStateException} (the segments' arena is
     * closed), never reads freed memory. Fails, freeing nothing, while a native call holds one of them. Closing
     * again does nothing.
     *
     * @throws UnsupportedOperationException for {@link #COLLECTED}, which the collector frees
     */
    @Override
    public synchronized void close() {
        if (owner == null) {
            throw new UnsupportedOperationException("collected weight memory is freed when unreachable, not closed");
        }
        if (owner.scope().isAlive()) {
            owner.close();
        }
    }

    /**
     * Allocations carved one after another, 64-byte aligned, out of slabs in huge pages (each its own mapping, freed
     * with the arena it was mapped in: of its own and automatic, when no segment of it is reachable): a new slab of
     * {@code slabBytes}, or of the allocation's whole huge pages where it is larger, when the rest of the newest
     * cannot hold the next allocation. The new slab's rest is kept for the allocations after it where it is the
     * larger rest. Only touched huge pages are backed, so a rest left behind costs at most the rest of the huge page
     * its slab's last allocation ends in.
     *
     * <p>Why large tensors share slabs rather than each take a mapping of its own: advised only in whole huge pages,
     * such a mapping left its last part (up to 2 MB) in 4 KB pages, where a 4096 x 14336 BINARY matrix's lookup
     * tiles (7.3 MB) had 1.3 MB, 36% of the second thread's half. In a C probe of those tiles that thread ran 10-13%
     * slower and the product 6-12%; through the native backend, alternated five times, BINARY x INT8 read 72-73% of
     * the roofline before, 73-75% after, base-3 TERNARY 83-89% before, 88-92% after. Advised whole, each tensor
     * would back up to 2 MB that nothing uses (a 418M model has dozens of such tensors); in shared slabs 100 tensors
     * of 5.7 MB took 6% more memory than their bytes, of 7 MB 1% (each in its own mapping, tail in 4 KB pages: 1%).
     */
    static final class Slabs {
        private final long slabBytes;
        /** The arena each new slab is mapped in. */
        private final Supplier<Arena> arenas;
        /** What is left of the newest slab, or null before the first. */
        private MemorySegment rest;

        Slabs(long slabBytes, Supplier<Arena> arenas) {
            this.slabBytes = slabBytes;
            this.arenas = arenas;
        }

        /** {@code bytes} of zeroed memory, or null if no slab could be mapped. */
        synchronized MemorySegment take(long bytes) {
            if (CALLS.isEmpty()) {
                return null;
            }
            if (rest != null && rest.byteSize() >= bytes) {
                MemorySegment s = rest.asSlice(0, bytes);
                rest = after(rest, bytes);
                return s;
            }
            MemorySegment slab = CALLS.get().mapHuge(arenas.get(), Math.max(slabBytes, roundUp(bytes, HUGE_PAGE)));
            if (slab == null) {
                return null;
            }
            MemorySegment slabRest = after(slab, bytes); // never written: zeroed
            if (rest == null || slabRest.byteSize() > rest.byteSize()) {
                rest = slabRest;
            }
            return slab.asSlice(0, bytes);
        }

        /** What follows the first {@code bytes} of {@code s}, from the next 64-byte boundary. */
        private static MemorySegment after(MemorySegment s, long bytes) {
            return s.asSlice(Math.min(roundUp(bytes, 64), s.byteSize()));
        }
    }

    /**
     * From this size up, {@link #allocate(Arena, long)} gives an allocation a mapping in huge pages of its own (its
     * last huge page, backed whole, at most a third unused); smaller ones come from the arena.
     */
    static final long MIN_HUGE_BYTES = 4L << 20;

    /**
     * {@code bytes} of zeroed native memory, 64-byte aligned, freed when {@code arena} closes. For a caller's own
     * arena (a benchmark's copies of a tensor); a backend's weights come from an instance, whose slabs pack them.
     */
    public static MemorySegment allocate(Arena arena, long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("negative allocation: " + bytes + " bytes");
        }
        if (bytes >= MIN_HUGE_BYTES && CALLS.isPresent()) {
            MemorySegment s = CALLS.get().mapHuge(arena, bytes);
            if (s != null) {
                return s;
            }
        }
        return arena.allocate(bytes, 64);
    }

    /** The C library's calls, bound once. */
    private record Calls(MethodHandle mmap, MethodHandle madvise, MethodHandle munmap) {

        static Optional<Calls> find() {
            String arch = System.getProperty("os.arch", "");
            if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")
                    || !(arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64")) // the flags below
                    || !WeightMemory.class.getModule().isNativeAccessEnabled()
                    || Boolean.getBoolean("bitplane.hugePages.off")) {
                return Optional.empty();
            }
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                ValueLayout.OfLong size = ValueLayout.JAVA_LONG;
                MethodHandle mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, size, ValueLayout.JAVA_INT,
                                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, size));
                MethodHandle madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, size, ValueLayout.JAVA_INT));
                MethodHandle munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, size));
                return Optional.of(new Calls(mmap, madvise, munmap));
            } catch (RuntimeException e) { // no such symbol, or a linker that cannot bind them
                return Optional.empty();
            }
        }

        /**
         * A fresh anonymous mapping, advised for huge pages, as a segment of {@code bytes} that unmaps it when
         * {@code arena} closes; null when the mapping fails. The mapping is one huge page longer than the segment so
         * that the segment can start on a huge page boundary (pages past it are never touched, so never backed by
         * memory). The advice covers the segment's last, partial huge page too: left in 4 KB pages, a tensor's last
         * part read slower than the rest (see {@link Slabs}), which carves several allocations out of one mapping so
         * that such a page is not mostly unused.
         */
        MemorySegment mapHuge(Arena arena, long bytes) {
            long length = bytes + HUGE_PAGE;
            try {
                MemorySegment base = (MemorySegment) mmap.invokeExact(MemorySegment.NULL, length,
                        PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
                long address = base.address();
                if (address == -1L) { // MAP_FAILED
                    return null;
                }
                long aligned = roundUp(address, HUGE_PAGE);
                int ignored = (int) madvise.invokeExact(MemorySegment.ofAddress(aligned),
                        roundUp(bytes, HUGE_PAGE), MADV_HUGEPAGE); // refused: small pages, same memory
                MethodHandle unmap = munmap;
                return MemorySegment.ofAddress(aligned).reinterpret(bytes, arena, s -> {
                    try {
                        int unused = (int) unmap.invokeExact(MemorySegment.ofAddress(address), length);
                    } catch (Throwable t) {
                        throw new IllegalStateException("munmap failed", t);
                    }
                });
            } catch (Throwable t) {
                return null;
            }
        }
    }

    static long roundUp(long value, long multiple) {
        return (value + multiple - 1) / multiple * multiple;
    }
}
