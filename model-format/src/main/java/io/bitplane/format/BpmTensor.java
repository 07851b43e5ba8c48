package io.bitplane.format;

import java.lang.foreign.MemorySegment;

/**
 * One tensor of an open file: its spec and a view of its bytes in the mapped file (no copy). Valid until the
 * {@link BpmFile} is closed.
 */
public record BpmTensor(TensorSpec spec, MemorySegment data, long fileOffset, int crc) {

    public String name() {
        return spec.name();
    }

    /**
     * Whether the spec is sound ({@link TensorSpec#problem}) and the bytes hold all of it: what a backend needs
     * before it repacks the tensor at upload (one that is not is refused by name, at upload or at its products).
     */
    public boolean isComplete() {
        return isComplete(spec, data);
    }

    /** {@link #isComplete()} for a spec and the bytes given for it. */
    public static boolean isComplete(TensorSpec spec, MemorySegment data) {
        return spec.problem() == null && data.byteSize() >= spec.byteLength();
    }

    /**
     * Nothing where this tensor {@link #isComplete is complete}, else an IllegalArgumentException that names it and
     * says what is wrong: for a backend whose kernels would otherwise read past the bytes.
     */
    public void requireComplete() {
        requireComplete(spec, data);
    }

    /** {@link #requireComplete()} for a spec and the bytes given for it. */
    public static void requireComplete(TensorSpec spec, MemorySegment data) {
        String problem = spec.problem();
        if (problem != null) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + problem);
        }
        if (data.byteSize() < spec.byteLength()) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + data.byteSize()
                    + " bytes where its spec needs " + spec.byteLength());
        }
    }

    /** All values as floats (the scalar reference dequantization). */
    public float[] toFloats() {
        return Dequantizer.toFloats(spec, data);
    }

    public EncodedTensor copy() {
        return new EncodedTensor(spec, data.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }
}
