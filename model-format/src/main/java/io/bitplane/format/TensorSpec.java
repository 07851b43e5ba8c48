package io.bitplane.format;

import java.util.Arrays;

/**
 * What a tensor is: its name, shape, encoding, group size, layout and activation hint. From these alone it computes
 * the byte length of the tensor and the offsets of its sections (FORMAT.md section 4), so the writer, the reader and
 * every kernel derive them in one place.
 */
public record TensorSpec(String name, long[] shape, Encoding encoding, int groupSize, int layout,
                         ActivationHint activations) {

    /** Layout 0: the canonical layouts of FORMAT.md. The only one of format version 1. */
    public static final int LAYOUT_CANONICAL = 0;
    /** Packed codes for SIMD kernels (INT4, INT4_ASYM, TERNARY): {@link PackedCodes}. */
    public static final int LAYOUT_PACKED = 1;

    public TensorSpec {
        shape = shape.clone();
    }

    public static TensorSpec of(String name, Encoding encoding, int groupSize, long... shape) {
        return new TensorSpec(name, shape, encoding, groupSize, LAYOUT_CANONICAL, ActivationHint.F32);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Rows of a matrix; 1 for a vector. */
    public long rows() {
        return shape.length == 2 ? shape[0] : 1;
    }

    /** Values per row (K): the innermost dimension. */
    public long cols() {
        return shape[shape.length - 1];
    }

    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** 64-bit words per row of one bit plane. */
    public long wordsPerRow() {
        return (cols() + 63) / 64;
    }

    /** Scale groups per row. */
    public long groupsPerRow() {
        return groupSize == 0 ? 1 : (cols() + groupSize - 1) / groupSize;
    }

    /** Values in one group: the whole row when the group size is 0. */
    public long effectiveGroupSize() {
        return groupSize == 0 ? cols() : groupSize;
    }

    /** Bytes of the planes (bit-plane encodings) or of the int8 values (INT8). */
    public long valueBytes() {
        if (layout == LAYOUT_PACKED) {
            return Math.multiplyExact(rows(), PackedCodes.rowBytes(this));
        }
        if (encoding.isBitPlanes()) {
            return Math.multiplyExact(Math.multiplyExact(rows(), encoding.planes), wordsPerRow() * 8);
        }
        if (encoding == Encoding.INT8) {
            return elementCount();
        }
        return Math.multiplyExact(elementCount(), encoding.floatBytes());
    }

    public long scalesOffset() {
        requireQuantized();
        return align64(valueBytes());
    }

    public long scaleBytes() {
        requireQuantized();
        return Math.multiplyExact(rows(), groupsPerRow() * 2);
    }

    public long minsOffset() {
        if (!encoding.hasMins()) {
            throw new IllegalStateException(encoding + " has no mins");
        }
        return align64(scalesOffset() + scaleBytes());
    }

    /** The exact byte length of the tensor's data. */
    public long byteLength() {
        if (!encoding.quantized) {
            return valueBytes();
        }
        if (encoding.hasMins()) {
            return minsOffset() + scaleBytes();
        }
        return scalesOffset() + scaleBytes();
    }

    /** Stored bits per weight, scales included. */
    public double bitsPerWeight() {
        return byteLength() * 8.0 / elementCount();
    }

    /**
     * The reasons this spec cannot describe a tensor, or null when it can. Used by the reader (on untrusted files)
     * and by the writer (on its own input), so both enforce the same rules.
     */
    public String problem() {
        if (name == null || name.isEmpty()) {
            return "empty tensor name";
        }
        if (encoding == null) {
            return "no encoding";
        }
        if (shape.length < 1 || shape.length > 2) {
            return "rank " + shape.length + " (1 or 2 allowed)";
        }
        for (long d : shape) {
            if (d <= 0 || d > (1L << 40)) {
                return "dimension " + d + " out of range in shape " + Arrays.toString(shape);
            }
        }
        if (layout != LAYOUT_CANONICAL && layout != LAYOUT_PACKED) {
            return "unknown layout id " + layout;
        }
        if (layout == LAYOUT_PACKED && !PackedCodes.supports(encoding)) {
            return encoding + " has no layout " + layout + " (packed codes: INT4, INT4_ASYM, TERNARY)";
        }
        if (activations == null) {
            return "no activation hint";
        }
        if (activations == ActivationHint.BINARY && encoding != Encoding.BINARY) {
            return "binary activations need BINARY weights (XNOR-Net), not " + encoding;
        }
        if (encoding.quantized && shape.length != 2) {
            return encoding + " needs a matrix, got shape " + Arrays.toString(shape);
        }
        if (!encoding.quantized && groupSize != 0) {
            return encoding + " takes no group size, got " + groupSize;
        }
        if (groupSize < 0 || groupSize > (1 << 24)) {
            return "group size " + groupSize + " out of range";
        }
        if ((encoding == Encoding.INT8 || encoding == Encoding.INT4 || encoding == Encoding.INT4_ASYM)
                && groupSize == 0) {
            return encoding + " needs a group size";
        }
        try {
            elementCount();
            byteLength();
        } catch (ArithmeticException e) {
            return "shape " + Arrays.toString(shape) + " is too large";
        }
        return null;
    }

    /** This spec in another layout. */
    public TensorSpec withLayout(int newLayout) {
        return new TensorSpec(name, shape, encoding, groupSize, newLayout, activations);
    }

    public static long align64(long x) {
        return (x + 63) & ~63L;
    }

    private void requireQuantized() {
        if (!encoding.quantized) {
            throw new IllegalStateException(encoding + " has no scales");
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorSpec t && name.equals(t.name) && Arrays.equals(shape, t.shape)
                && encoding == t.encoding && groupSize == t.groupSize && layout == t.layout
                && activations == t.activations;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + Arrays.toString(shape) + " " + encoding + (groupSize > 0 ? " g" + groupSize : "");
    }
}
