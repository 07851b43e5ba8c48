package io.bitplane.format;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

/** CRC32C (Castagnoli) over memory segments of any size, as FORMAT.md prescribes for the header and each tensor. */
public final class Crc32c {
    private Crc32c() {
    }

    private static final long CHUNK = 1L << 28;

    public static int of(MemorySegment... parts) {
        CRC32C crc = new CRC32C();
        for (MemorySegment part : parts) {
            update(crc, part);
        }
        return (int) crc.getValue();
    }

    public static void update(CRC32C crc, MemorySegment segment) {
        // asByteBuffer is limited to 2 GiB, so large tensors go through in slices.
        for (long off = 0; off < segment.byteSize(); off += CHUNK) {
            crc.update(segment.asSlice(off, Math.min(CHUNK, segment.byteSize() - off)).asByteBuffer());
        }
    }
}
