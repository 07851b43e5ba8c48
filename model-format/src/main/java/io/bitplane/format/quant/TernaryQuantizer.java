package io.bitplane.format.quant;

import io.bitplane.format.Halfs;

/**
 * TERNARY per group (per row when the group size is 0): {@code w = t s}, t in {-1, 0, 1}. Plane 0 marks t != 0,
 * plane 1 marks t < 0.
 */
final class TernaryQuantizer {
    private TernaryQuantizer() {
    }

    static short group(String name, float[] w, int offset, int len, int col0, Quantizer.PlaneRow out,
                       QuantSpec.Method method) {
        double sumAbs = 0;
        for (int i = 0; i < len; i++) {
            sumAbs += Math.abs(w[offset + i]);
        }
        float meanAbs = (float) (sumAbs / len);
        short s16;
        if (method == QuantSpec.Method.TWN) {
            // TWN: values beyond delta = 0.7 mean|w| become +-1; the scale is the mean magnitude of those.
            float delta = 0.7f * meanAbs;
            double kept = 0;
            int count = 0;
            for (int i = 0; i < len; i++) {
                float a = Math.abs(w[offset + i]);
                if (a > delta) {
                    kept += a;
                    count++;
                }
            }
            s16 = Halfs.scaleToF16(count == 0 ? 0 : (float) (kept / count), name);
            for (int i = 0; i < len; i++) {
                float v = w[offset + i];
                write(out, col0 + i, Math.abs(v) > delta ? (v < 0 ? -1 : 1) : 0);
            }
        } else {
            // BitNet b1.58 absmean: round(w / mean|w|) clipped to [-1, 1], with the f16 scale the file holds.
            s16 = Halfs.scaleToF16(meanAbs, name);
            float s = Halfs.f16ToFloat(s16);
            for (int i = 0; i < len; i++) {
                int t = s == 0 ? 0 : Math.max(-1, Math.min(1, Math.round(w[offset + i] / s)));
                write(out, col0 + i, t);
            }
        }
        return s16;
    }

    /** Writes one ternary value into the mask and sign planes of the row. */
    static void write(Quantizer.PlaneRow out, int col, int t) {
        if (t != 0) {
            out.set(0, col);
            if (t < 0) {
                out.set(1, col);
            }
        }
    }
}
