package io.bitplane.format;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** For tests that damage a .bpm header on purpose: its CRC recomputed, so that the checks behind it must fire. */
public final class BpmHeaderChecksum {
    private BpmHeaderChecksum() {
    }

    /**
     * Writes the header CRC32C (FORMAT.md: over bytes [0, 40) and [48, 48 + M + D)) of {@code file} in place, where
     * its metadata and directory lengths M and D are not negative and end inside it; else leaves it as it is.
     */
    public static void recompute(byte[] file) {
        if (file.length < 48) {
            return;
        }
        ByteBuffer header = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        long end = 48 + header.getLong(16) + header.getLong(24);
        if (header.getLong(16) >= 0 && header.getLong(24) >= 0 && end >= 48 && end <= file.length) {
            MemorySegment s = MemorySegment.ofArray(file);
            header.putInt(40, Crc32c.of(s.asSlice(0, 40), s.asSlice(48, end - 48)));
        }
    }
}
