package io.bitplane.format;

import java.lang.foreign.MemorySegment;

/**
 * Turns any tensor back into floats: the scalar reference for every encoding (FORMAT.md section 4). Kernels are
 * tested against what this computes, and {@code convert --weights f32} uses it.
 */
public final class Dequantizer {
    private Dequantizer() {
    }

    /** The whole tensor, row-major. */
    public static float[] toFloats(TensorSpec spec, MemorySegment data) {
        long n = spec.elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": " + n + " values do not fit one array");
        }
        float[] out = new float[(int) n];
        int cols = Math.toIntExact(spec.cols());
        for (long r = 0; r < spec.rows(); r++) {
            row(spec, data, r, out, (int) (r * cols));
        }
        return out;
    }

    /** One row of K values into {@code out[offset .. offset + K)}. */
    public static void row(TensorSpec spec, MemorySegment data, long row, float[] out, int offset) {
        int k = Math.toIntExact(spec.cols());
        long base = row * k;
        switch (spec.encoding()) {
            case F32 -> {
                for (int i = 0; i < k; i++) {
                    out[offset + i] = data.getAtIndex(EncodedTensor.FLOAT, base + i);
                }
            }
            case F16 -> {
                for (int i = 0; i < k; i++) {
                    out[offset + i] = Halfs.f16ToFloat(data.getAtIndex(EncodedTensor.SHORT, base + i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < k; i++) {
                    out[offset + i] = Halfs.bf16ToFloat(data.getAtIndex(EncodedTensor.SHORT, base + i));
                }
            }
            case INT8 -> {
                for (int i = 0; i < k; i++) {
                    out[offset + i] = data.get(java.lang.foreign.ValueLayout.JAVA_BYTE, base + i) * scale(spec, data, row, i);
                }
            }
            case INT4, INT4_ASYM, TERNARY, BINARY -> {
                for (int i = 0; i < k; i++) {
                    out[offset + i] = planeValue(spec, data, row, i);
                }
            }
        }
    }

    /** The f16 scale of the group that holds value {@code col} of {@code row}. */
    public static float scale(TensorSpec spec, MemorySegment data, long row, long col) {
        long group = row * spec.groupsPerRow() + col / spec.effectiveGroupSize();
        return Halfs.f16ToFloat(data.get(EncodedTensor.SHORT, spec.scalesOffset() + 2 * group));
    }

    private static float min(TensorSpec spec, MemorySegment data, long row, long col) {
        long group = row * spec.groupsPerRow() + col / spec.effectiveGroupSize();
        return Halfs.f16ToFloat(data.get(EncodedTensor.SHORT, spec.minsOffset() + 2 * group));
    }

    /** Bit {@code col} of plane {@code plane} of {@code row} (0 or 1). */
    public static int bit(TensorSpec spec, MemorySegment data, long row, int plane, long col) {
        long words = spec.wordsPerRow();
        long word = (row * spec.encoding().planes + plane) * words + col / 64;
        return (int) (data.getAtIndex(EncodedTensor.LONG, word) >>> (col % 64)) & 1;
    }

    private static float planeValue(TensorSpec spec, MemorySegment data, long row, long col) {
        float s = scale(spec, data, row, col);
        int code = planeCode(spec, data, row, col);
        return spec.encoding() == Encoding.INT4_ASYM ? code * s + min(spec, data, row, col) : code * s;
    }

    /**
     * The integer code of value {@code col} of {@code row} of a bit-plane encoding, in either layout: BINARY +-1,
     * TERNARY t, INT4 u - 8, INT4_ASYM u.
     */
    public static int planeCode(TensorSpec spec, MemorySegment data, long row, long col) {
        if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
            return PackedCodes.code(spec, data, row, col);
        }
        return switch (spec.encoding()) {
            case BINARY -> bit(spec, data, row, 0, col) == 1 ? -1 : 1;
            case TERNARY -> bit(spec, data, row, 0, col) == 0 ? 0 : (bit(spec, data, row, 1, col) == 1 ? -1 : 1);
            case INT4 -> unsigned4(spec, data, row, col) - 8;
            case INT4_ASYM -> unsigned4(spec, data, row, col);
            default -> throw new IllegalStateException(spec.encoding().toString());
        };
    }

    private static int unsigned4(TensorSpec spec, MemorySegment data, long row, long col) {
        int u = 0;
        for (int p = 0; p < 4; p++) {
            u |= bit(spec, data, row, p, col) << p;
        }
        return u;
    }
}
