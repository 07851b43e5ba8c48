package io.bitplane.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;

class WeightMemoryTest {

    private static final long MB = 1L << 20;

    @Test
    void allocatesZeroedAlignedWritableMemoryOfEverySize() {
        long[] sizes = {0, 1, 63, WeightMemory.MIN_SLAB_BYTES - 1, WeightMemory.MIN_SLAB_BYTES, MB + 3,
                4 * MB - 1, 4 * MB, 4 * MB + 1, 9 * MB + 123};
        try (Arena arena = Arena.ofConfined()) {
            for (long bytes : sizes) {
                assertZeroedAlignedWritable(WeightMemory.allocate(arena, bytes), bytes);
                assertZeroedAlignedWritable(WeightMemory.COLLECTED.allocate(bytes), bytes); // freed when unreachable
            }
        }
        try (WeightMemory memory = WeightMemory.closeable()) {
            for (long bytes : sizes) {
                assertZeroedAlignedWritable(memory.allocate(bytes), bytes);
            }
            assertThrows(IllegalArgumentException.class, () -> memory.allocate(-1));
        }
        assertThrows(IllegalArgumentException.class, () -> WeightMemory.COLLECTED.allocate(-1));
    }

    private static void assertZeroedAlignedWritable(MemorySegment s, long bytes) {
        assertEquals(bytes, s.byteSize(), "size of a " + bytes + "-byte allocation");
        assertEquals(0, s.address() % 64, "alignment of a " + bytes + "-byte allocation");
        long longs = bytes / 8;
        for (long i = 0; i < longs; i++) {
            if (s.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i) != 0) {
                throw new AssertionError("byte " + 8 * i + " of a " + bytes + "-byte allocation is not 0");
            }
        }
        for (long i = 8 * longs; i < bytes; i++) {
            assertEquals(0, s.get(ValueLayout.JAVA_BYTE, i), "byte " + i + " of " + bytes);
        }
        if (bytes > 0) { // both ends are ours to write (a slab's next allocation would be overwritten, and fail)
            s.set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            s.set(ValueLayout.JAVA_BYTE, bytes - 1, (byte) 2);
            assertEquals(2, s.get(ValueLayout.JAVA_BYTE, bytes - 1));
        }
    }

    @Test
    void largeAllocationsStartOnAHugePage() {
        assumeTrue(WeightMemory.hugePagesRequested(), "huge pages are not requested here (not Linux?)");
        try (Arena arena = Arena.ofConfined()) {
            assertEquals(0, WeightMemory.allocate(arena, 4 * MB + 1).address() % WeightMemory.HUGE_PAGE);
            assertEquals(0, WeightMemory.allocate(arena, 33 * MB).address() % WeightMemory.HUGE_PAGE);
        }
    }

    /** Huge pages requested by WeightMemory, and offered by the system on request. */
    private static void assumeHugePagesOffered() throws IOException {
        assumeTrue(WeightMemory.hugePagesRequested(), "huge pages are not requested here (not Linux?)");
        Path setting = Path.of("/sys/kernel/mm/transparent_hugepage/enabled");
        assumeTrue(Files.exists(setting), "this kernel has no transparent huge pages");
        String thp = Files.readString(setting);
        assumeTrue(thp.contains("[madvise]") || thp.contains("[always]"), "transparent huge pages are off: " + thp);
    }

    /** The kernel's own account of the mapping: advised ("hg" in its flags) and, once written, in huge pages. */
    @Test
    void largeAllocationsAreAdvisedAndBackedByHugePages() throws IOException {
        assumeHugePagesOffered();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = WeightMemory.allocate(arena, 16 * MB);
            s.fill((byte) 7);
            Mapping m = mappingAt(s.address());
            assertNotNull(m, "no mapping holds the allocation");
            assertTrue(m.flags().contains(" hg"), "the mapping is not advised for huge pages: " + m.flags());
            assertTrue(m.anonHugeKb() > 0, "no huge page backs 16 MB of advised, written memory");
            long whole = WeightMemory.hugePageBytes().orElseThrow();
            assertTrue(whole >= 1024 * m.anonHugeKb(), "the process counts " + whole + " bytes in huge pages, the "
                    + "allocation alone " + 1024 * m.anonHugeKb());
        }
    }

    /** Left in 4 KB pages, a tensor's last part read slower than the rest (WeightMemory.Slabs). */
    @Test
    void aMappingsLastPartialHugePageIsAdvisedToo() throws IOException {
        assumeHugePagesOffered();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = WeightMemory.allocate(arena, 4 * MB + 123);
            s.fill((byte) 3);
            assertTrue(advised(mappingAt(s.address())), "the whole pages are not advised");
            Mapping tail = mappingAt(s.address() + 4 * MB);
            assertTrue(advised(tail), "the last 123 bytes are not advised: " + tail);
        }
    }

    @Test
    void closingTheArenaUnmapsTheMemory() throws IOException {
        assumeTrue(WeightMemory.hugePagesRequested(), "huge pages are not requested here (not Linux?)");
        MemorySegment s;
        try (Arena arena = Arena.ofConfined()) {
            s = WeightMemory.allocate(arena, 8 * MB);
            s.fill((byte) 1);
            assertNotNull(mappingAt(s.address()));
        }
        assertFalse(s.scope().isAlive());
        Mapping after = mappingAt(s.address());
        // Another mapping may have taken the addresses since, but not one advised for huge pages by us.
        assertFalse(advised(after), "still mapped: " + after);
    }

    @Test
    void smallAllocationsComeFromTheArenaAsBefore() throws IOException {
        assumeTrue(WeightMemory.hugePagesRequested(), "huge pages are not requested here (not Linux?)");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = WeightMemory.allocate(arena, WeightMemory.MIN_HUGE_BYTES - 1);
            Mapping m = mappingAt(s.address());
            assertFalse(advised(m), "a small allocation was advised: " + m);
        }
    }

    /** The 2048 x 2048 products of a 418M model, the 256 rows of its keys: each in 4 KB pages read 25% slower. */
    @Test
    void midSizedAllocationsShareSlabsInHugePages() throws IOException {
        assumeHugePagesOffered();
        WeightMemory.Slabs slabs = new WeightMemory.Slabs(4 * MB, Arena::ofAuto);
        MemorySegment a = slabs.take(MB + 1);
        MemorySegment b = slabs.take(MB);
        MemorySegment c = slabs.take(2 * MB); // 2 MB - 64 bytes are left of the first slab
        assertEquals(0, a.address() % WeightMemory.HUGE_PAGE, "a slab starts on a huge page");
        assertEquals(a.address() + MB + 64, b.address(), "the second allocation does not follow the first");
        assertEquals(0, c.address() % WeightMemory.HUGE_PAGE, "the third allocation does not start a new slab");
        assertTrue(c.address() >= b.address() + b.byteSize() || c.address() + c.byteSize() <= a.address(),
                "the new slab overlaps the first");
        for (MemorySegment s : List.of(a, b, c)) {
            assertZeroedAlignedWritable(s, s.byteSize());
        }
        a.fill((byte) 5);
        b.fill((byte) 6);
        assertEquals(5, a.get(ValueLayout.JAVA_BYTE, MB), "the second allocation overwrote the first");
        Mapping m = mappingAt(a.address());
        assertNotNull(m, "no mapping holds the slab");
        assertTrue(m.flags().contains(" hg"), "the slab is not advised for huge pages: " + m.flags());
        assertTrue(m.anonHugeKb() > 0, "no huge page backs a written slab");
        MemorySegment large = slabs.take(4 * MB + 1);
        assertEquals(0, large.address() % WeightMemory.HUGE_PAGE, "more than a slab was carved out of one");
        assertZeroedAlignedWritable(large, large.byteSize());
    }

    /**
     * Allocations larger than a slab get slabs of their own, advised to their end, whose rest the next allocations
     * take where it is larger than the rest of the newest slab.
     */
    @Test
    void largeAllocationsTakeSlabsOfTheirOwnAndShareTheirLastHugePage() throws IOException {
        assumeHugePagesOffered();
        WeightMemory.Slabs slabs = new WeightMemory.Slabs(4 * MB, Arena::ofAuto);
        MemorySegment a = slabs.take(MB); // a slab of 4 MB: 3 MB left
        MemorySegment b = slabs.take(5 * MB + 1); // 6 MB of its own: its 1 MB left is less than 3 MB
        MemorySegment c = slabs.take(2 * MB); // the first slab's rest: 1 MB left there
        MemorySegment d = slabs.take(8 * MB + MB / 2); // 10 MB of its own: its 1.5 MB left is more than 1 MB
        MemorySegment e = slabs.take(MB);
        assertEquals(0, b.address() % WeightMemory.HUGE_PAGE, "the 5 MB allocation does not start a slab");
        assertEquals(a.address() + MB, c.address(), "the third allocation does not take the first slab's rest");
        assertEquals(0, d.address() % WeightMemory.HUGE_PAGE, "the 8.5 MB allocation does not start a slab");
        assertEquals(d.address() + 8 * MB + MB / 2, e.address(), "the last allocation does not follow the 8.5 MB");
        for (MemorySegment s : List.of(a, b, c, d, e)) {
            assertZeroedAlignedWritable(s, s.byteSize());
            s.fill((byte) 1);
            assertTrue(advised(mappingAt(s.address() + s.byteSize() - 1)),
                    "the last byte of " + s.byteSize() + " bytes is not advised");
        }
        assertEquals(1, d.get(ValueLayout.JAVA_BYTE, d.byteSize() - 1), "the last allocation overwrote the one before");
    }

    @Test
    void theDefaultSlabsServeMidSizedAllocationsFreedWhenUnreachable() throws IOException {
        assumeHugePagesOffered();
        MemorySegment mid = WeightMemory.COLLECTED.allocate(MB);
        MemorySegment small = WeightMemory.COLLECTED.allocate(WeightMemory.MIN_SLAB_BYTES - 1);
        Mapping m = mappingAt(mid.address());
        assertTrue(advised(m), "a 1 MB allocation is not in huge pages: " + m);
        Mapping s = mappingAt(small.address());
        assertFalse(advised(s), "an allocation below the slabs' least was advised: " + s);
    }

    @Test
    void aSlabIsUnmappedOnceNoneOfItsSegmentsIsReachable() throws Exception {
        assumeTrue(WeightMemory.hugePagesRequested(), "huge pages are not requested here (not Linux?)");
        long address = slabAllocationLeftUnreachable(); // asserts the slab mapped and advised while in use
        for (int i = 0; i < 200 && advised(mappingAt(address)); i++) {
            System.gc();
            Thread.sleep(25);
        }
        // Another mapping may have taken the addresses since, but not one advised for huge pages by this test.
        assertFalse(advised(mappingAt(address)), "a slab nothing refers to is still mapped after 5 s of GCs");
    }

    /** A backend's memory: every size freed at close, not when a collection notices (see the class comment). */
    @Test
    void closingFreesEveryAllocationAtOnce() throws IOException {
        assumeHugePagesOffered();
        WeightMemory memory = WeightMemory.closeable();
        MemorySegment small = memory.allocate(1000);
        MemorySegment mid = memory.allocate(MB);
        MemorySegment large = memory.allocate(8 * MB);
        for (MemorySegment s : List.of(small, mid, large)) {
            s.fill((byte) 4);
        }
        assertTrue(advised(mappingAt(mid.address())), "a 1 MB allocation is not in huge pages");
        assertTrue(advised(mappingAt(large.address())), "an 8 MB allocation is not in huge pages");
        memory.close();
        for (MemorySegment s : List.of(small, mid, large)) {
            assertFalse(s.scope().isAlive(), s.byteSize() + " bytes outlived the close");
            assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_BYTE, 0));
        }
        // Another mapping may have taken the addresses since, but not one advised for huge pages by this test.
        assertFalse(advised(mappingAt(mid.address())), "the slab is still mapped after close");
        assertFalse(advised(mappingAt(large.address())), "the large mapping is still mapped after close");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> memory.allocate(MB));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }

    /** Two backends, two models: closing one leaves the other's weights, slabs included, where they were. */
    @Test
    void closingOneMemoryLeavesAnothersAllocations() {
        MemorySegment kept;
        try (WeightMemory other = WeightMemory.closeable(); WeightMemory closed = WeightMemory.closeable()) {
            kept = other.allocate(MB);
            kept.fill((byte) 8);
            MemorySegment gone = closed.allocate(MB);
            closed.close();
            assertFalse(gone.scope().isAlive());
            assertEquals(8, kept.get(ValueLayout.JAVA_BYTE, MB - 1), "the other memory's slab was freed too");
            assertEquals(MB, other.allocate(MB).byteSize());
        }
        assertFalse(kept.scope().isAlive());
    }

    @Test
    void collectedMemoryCannotBeClosed() {
        assertThrows(UnsupportedOperationException.class, WeightMemory.COLLECTED::close);
        assertEquals(MB, WeightMemory.COLLECTED.allocate(MB).byteSize(), "a refused close freed nothing");
    }

    /** The address of an allocation from slabs that are unreachable, as it is, once this returns. */
    private static long slabAllocationLeftUnreachable() throws IOException {
        WeightMemory.Slabs slabs = new WeightMemory.Slabs(4 * MB, Arena::ofAuto);
        MemorySegment s = slabs.take(MB);
        s.fill((byte) 9);
        assertTrue(advised(mappingAt(s.address())), "the slab is not advised for huge pages");
        return s.address();
    }

    private static boolean advised(Mapping m) {
        return m != null && m.flags().contains(" hg");
    }

    private record Mapping(String flags, long anonHugeKb) {
    }

    /** The /proc/self/smaps entry whose range holds {@code address}, or null. */
    private static Mapping mappingAt(long address) throws IOException {
        List<String> lines = Files.readAllLines(Path.of("/proc/self/smaps"));
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int dash = line.indexOf('-');
            int space = line.indexOf(' ');
            if (dash <= 0 || space < dash || !line.substring(0, dash).matches("[0-9a-f]+")) {
                continue;
            }
            long start = Long.parseUnsignedLong(line.substring(0, dash), 16);
            long end = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
            if (Long.compareUnsigned(address, start) < 0 || Long.compareUnsigned(address, end) >= 0) {
                continue;
            }
            long anonHuge = 0;
            String flags = "";
            for (int j = i + 1; j < lines.size() && !lines.get(j).matches("^[0-9a-f]+-.*"); j++) {
                String field = lines.get(j);
                if (field.startsWith("AnonHugePages:")) {
                    anonHuge = Long.parseLong(field.replaceAll("[^0-9]", ""));
                } else if (field.startsWith("VmFlags:")) {
                    flags = field.substring("VmFlags:".length()) + " ";
                }
            }
            return new Mapping(flags, anonHuge);
        }
        return null;
    }
}
