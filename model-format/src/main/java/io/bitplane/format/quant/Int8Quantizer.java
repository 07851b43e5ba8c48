package io.bitplane.format.quant;

import io.bitplane.format.Halfs;

/** INT8 symmetric per group: scale = absmax / 127 (rounded to f16), q = round(w / scale) in [-127, 127]. */
final class Int8Quantizer {
    private Int8Quantizer() {
    }

    static void quantizeRow(String name, float[] w, int offset, int cols, int group, byte[] q, short[] scales,
                            int scaleIndex) {
        for (int start = 0, g = 0; start < cols; start += group, g++) {
            int len = Math.min(group, cols - start);
            short s16 = scale(name, w, offset + start, len);
            scales[scaleIndex + g] = s16;
            float s = Halfs.f16ToFloat(s16);
            for (int i = 0; i < len; i++) {
                q[offset + start + i] = (byte) code(w[offset + start + i], s);
            }
        }
    }

    /** The f16 scale of a group: absmax / 127. */
    static short scale(String name, float[] w, int offset, int len) {
        float amax = 0;
        for (int i = 0; i < len; i++) {
            amax = Math.max(amax, Math.abs(w[offset + i]));
        }
        return Halfs.scaleToF16(amax / 127f, name);
    }

    /** round(v / s) in [-127, 127] (multiplying by the reciprocal, as the file's codes always were). */
    static int code(float v, float s) {
        float inv = s == 0 ? 0 : 1 / s;
        return Math.max(-127, Math.min(127, Math.round(v * inv)));
    }
}
