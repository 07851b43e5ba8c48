package io.bitplane.format;

/**
 * How the values of one tensor are stored. The byte layout of each encoding is drawn in FORMAT.md section 4;
 * {@link TensorSpec} computes its sizes and section offsets, so that every reader and writer agrees on them.
 */
public enum Encoding {
    F32(0, 0, false),
    F16(1, 0, false),
    BF16(2, 0, false),
    INT8(3, 0, true),
    INT4(4, 4, true),
    INT4_ASYM(5, 4, true),
    TERNARY(6, 2, true),
    BINARY(7, 1, true);

    /** The id stored in the tensor directory. Never renumber: files on disk hold these values. */
    public final int id;
    /** Bit planes per row (0 for encodings stored as whole numbers: floats and INT8 bytes). */
    public final int planes;
    /** True for the encodings that carry per-group scales. */
    public final boolean quantized;

    Encoding(int id, int planes, boolean quantized) {
        this.id = id;
        this.planes = planes;
        this.quantized = quantized;
    }

    public boolean isBitPlanes() {
        return planes > 0;
    }

    public boolean hasMins() {
        return this == INT4_ASYM;
    }

    /** Bytes per value of the unquantized encodings. */
    public int floatBytes() {
        return switch (this) {
            case F32 -> 4;
            case F16, BF16 -> 2;
            default -> throw new IllegalStateException(this + " is not a float encoding");
        };
    }

    /** The encoding with this directory id, or null when the id is unknown. */
    public static Encoding ofId(int id) {
        for (Encoding e : values()) {
            if (e.id == id) {
                return e;
            }
        }
        return null;
    }
}
