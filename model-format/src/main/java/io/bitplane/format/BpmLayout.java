package io.bitplane.format;

import java.nio.charset.StandardCharsets;

/** The fixed numbers of the .bpm container (FORMAT.md sections 1 and 2), shared by the reader and the writer. */
final class BpmLayout {
    private BpmLayout() {
    }

    static final byte[] MAGIC = "BITPLANE".getBytes(StandardCharsets.US_ASCII);
    static final int VERSION = 1;
    /**
     * Header flag: the config carries rope frequency factors (rope scaling) that decoding must apply. A reader
     * from before it rejects the flag rather than decode with plain rotary frequencies, wrongly.
     */
    static final int FLAG_ROPE_FACTORS = 1;
    static final int KNOWN_FLAGS = FLAG_ROPE_FACTORS;

    /** The header flags a file of this metadata must carry. */
    static int flagsOf(ModelMetadata m) {
        return m.config().ropeFreqFactors() != null ? FLAG_ROPE_FACTORS : 0;
    }
    static final int FIXED_HEADER = 48;
    /** Bytes [40, 48) (the CRC and a reserved word) are not covered by the header CRC. */
    static final int CRC_FIELD = 40;
    static final int MAX_NAME = 1024;
    static final int ALIGNMENT = 64;

    /** Bytes of one directory entry before its shape: name length, encoding, layout, hint, rank, group. */
    static int entryBytes(int nameBytes, int rank) {
        return 2 + nameBytes + 4 + 4 + 8 * rank + 8 + 8 + 4;
    }
}
