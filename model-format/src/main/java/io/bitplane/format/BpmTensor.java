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

    /** All values as floats (the scalar reference dequantization). */
    public float[] toFloats() {
        return Dequantizer.toFloats(spec, data);
    }

    public EncodedTensor copy() {
        return new EncodedTensor(spec, data.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }
}
