package io.bitplane.kernels.scalar;

import io.bitplane.kernels.Buffer;

/** A CPU buffer: floats on the Java heap. */
public record ArrayBuffer(float[] data) implements Buffer {
    @Override
    public int length() {
        return data.length;
    }

    /** The array behind a buffer that a CPU backend allocated. */
    public static float[] of(Buffer b) {
        if (b instanceof ArrayBuffer a) {
            return a.data;
        }
        throw new IllegalArgumentException("not a CPU buffer: " + b.getClass().getName());
    }
}
