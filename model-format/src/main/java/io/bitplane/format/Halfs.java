package io.bitplane.format;

/** Conversions between float and the 16-bit float formats of the file (IEEE binary16 and bfloat16). */
public final class Halfs {
    private Halfs() {
    }

    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Round to nearest even, as ggml's GGML_FP32_TO_FP16 (F16C) does. */
    public static short floatToF16(float f) {
        return Float.floatToFloat16(f);
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** Round to nearest even; NaN stays a quiet NaN (the rule of ggml_compute_fp32_to_bf16). */
    public static short floatToBf16(float f) {
        int i = Float.floatToRawIntBits(f);
        if ((i & 0x7fffffff) > 0x7f800000) {
            return (short) ((i >>> 16) | 64);
        }
        return (short) ((i + (0x7fff + ((i >>> 16) & 1))) >>> 16);
    }

    /**
     * A scale rounded to f16, or an exception naming the tensor when the scale does not fit (a weight beyond
     * about 4e5 in magnitude): storing infinity would silently ruin the tensor.
     */
    public static short scaleToF16(float scale, String tensor) {
        short h = floatToF16(scale);
        if (Float.isInfinite(f16ToFloat(h)) || Float.isNaN(scale)) {
            throw new IllegalArgumentException("tensor " + tensor + ": scale " + scale
                    + " does not fit in f16 (weights are too large or not finite)");
        }
        return h;
    }
}
