package io.bitplane.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * One tensor's bytes exactly as they lie in a .bpm file (FORMAT.md section 4), held in memory between a quantizer
 * or importer and the writer. The factories here are the only code that lays out tensor bytes.
 */
public record EncodedTensor(TensorSpec spec, byte[] bytes) {

    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public EncodedTensor {
        if (bytes.length != spec.byteLength()) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + bytes.length + " bytes, "
                    + spec.encoding() + " " + java.util.Arrays.toString(spec.shape()) + " needs " + spec.byteLength());
        }
    }

    public MemorySegment segment() {
        return MemorySegment.ofArray(bytes);
    }

    /** F32, F16 or BF16 values from floats (rounded to nearest even for the 16-bit ones). */
    public static EncodedTensor ofFloats(TensorSpec spec, float[] values) {
        checkCount(spec, values.length);
        byte[] out = allocate(spec);
        MemorySegment s = MemorySegment.ofArray(out);
        switch (spec.encoding()) {
            case F32 -> {
                for (int i = 0; i < values.length; i++) {
                    s.setAtIndex(FLOAT, i, values[i]);
                }
            }
            case F16 -> {
                for (int i = 0; i < values.length; i++) {
                    s.setAtIndex(SHORT, i, Halfs.floatToF16(values[i]));
                }
            }
            case BF16 -> {
                for (int i = 0; i < values.length; i++) {
                    s.setAtIndex(SHORT, i, Halfs.floatToBf16(values[i]));
                }
            }
            default -> throw new IllegalArgumentException(spec.encoding() + " is not a float encoding");
        }
        return new EncodedTensor(spec, out);
    }

    /** Raw 16-bit values (F16 or BF16 bits) copied without rounding, for lossless imports. */
    public static EncodedTensor ofHalfBits(TensorSpec spec, short[] bits) {
        checkCount(spec, bits.length);
        byte[] out = allocate(spec);
        MemorySegment s = MemorySegment.ofArray(out);
        for (int i = 0; i < bits.length; i++) {
            s.setAtIndex(SHORT, i, bits[i]);
        }
        return new EncodedTensor(spec, out);
    }

    /** INT8: row-major int8 values and one f16 scale per group. */
    public static EncodedTensor ofInt8(TensorSpec spec, byte[] q, short[] scales) {
        checkCount(spec, q.length);
        byte[] out = allocate(spec);
        System.arraycopy(q, 0, out, 0, q.length);
        putShorts(out, spec.scalesOffset(), scales, spec.rows() * spec.groupsPerRow(), spec, "scales");
        return new EncodedTensor(spec, out);
    }

    /**
     * Bit-plane encodings: {@code planes[(row * P + p) * W + word]}, one f16 scale per group and, for INT4_ASYM,
     * one f16 min per group (null otherwise).
     */
    public static EncodedTensor ofPlanes(TensorSpec spec, long[] planes, short[] scales, short[] mins) {
        long words = spec.rows() * spec.encoding().planes * spec.wordsPerRow();
        if (planes.length != words) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + planes.length + " plane words, "
                    + words + " expected");
        }
        byte[] out = allocate(spec);
        MemorySegment s = MemorySegment.ofArray(out);
        for (int i = 0; i < planes.length; i++) {
            s.setAtIndex(LONG, i, planes[i]);
        }
        putShorts(out, spec.scalesOffset(), scales, spec.rows() * spec.groupsPerRow(), spec, "scales");
        if (spec.encoding().hasMins()) {
            putShorts(out, spec.minsOffset(), mins, spec.rows() * spec.groupsPerRow(), spec, "mins");
        }
        return new EncodedTensor(spec, out);
    }

    private static void putShorts(byte[] out, long offset, short[] values, long expected, TensorSpec spec,
                                  String what) {
        if (values == null || values.length != expected) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + (values == null ? 0 : values.length)
                    + " " + what + ", " + expected + " expected");
        }
        MemorySegment s = MemorySegment.ofArray(out).asSlice(offset);
        for (int i = 0; i < values.length; i++) {
            s.setAtIndex(SHORT, i, values[i]);
        }
    }

    private static void checkCount(TensorSpec spec, long count) {
        if (count != spec.elementCount()) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + count + " values, shape "
                    + java.util.Arrays.toString(spec.shape()) + " holds " + spec.elementCount());
        }
    }

    private static byte[] allocate(TensorSpec spec) {
        long n = spec.byteLength();
        if (n > Integer.MAX_VALUE - 64) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + n
                    + " bytes is larger than one in-memory tensor may be (2 GiB)");
        }
        return new byte[(int) n];
    }
}
