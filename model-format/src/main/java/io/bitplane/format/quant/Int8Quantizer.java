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
            float amax = 0;
            for (int i = 0; i < len; i++) {
                amax = Math.max(amax, Math.abs(w[offset + start + i]));
            }
            short s16 = Halfs.scaleToF16(amax / 127f, name);
            scales[scaleIndex + g] = s16;
            float s = Halfs.f16ToFloat(s16);
            float inv = s == 0 ? 0 : 1 / s;
            for (int i = 0; i < len; i++) {
                int v = Math.round(w[offset + start + i] * inv);
                q[offset + start + i] = (byte) Math.max(-127, Math.min(127, v));
            }
        }
    }
}
