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
        short s16 = scale(name, w, offset, len, method);
        float s = Halfs.f16ToFloat(s16);
        // TWN keeps values beyond delta = 0.7 mean|w|; absmean rounds w / s to the nearest of {-1, 0, 1}.
        float delta = method == QuantSpec.Method.TWN ? 0.7f * meanAbs(w, offset, len) : 0;
        for (int i = 0; i < len; i++) {
            float v = w[offset + i];
            int t = method == QuantSpec.Method.TWN ? (Math.abs(v) > delta ? (v < 0 ? -1 : 1) : 0) : code(v, s);
            write(out, col0 + i, t);
        }
        return s16;
    }

    /**
     * The f16 scale of a group. Absmean (BitNet b1.58): mean |w|. TWN: the mean magnitude of the values beyond
     * delta = 0.7 mean |w|.
     */
    static short scale(String name, float[] w, int offset, int len, QuantSpec.Method method) {
        float meanAbs = meanAbs(w, offset, len);
        if (method != QuantSpec.Method.TWN) {
            return Halfs.scaleToF16(meanAbs, name);
        }
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
        return Halfs.scaleToF16(count == 0 ? 0 : (float) (kept / count), name);
    }

    /** The nearest ternary value of {@code v / s}. */
    static int code(float v, float s) {
        return s == 0 ? 0 : Math.max(-1, Math.min(1, Math.round(v / s)));
    }

    private static float meanAbs(float[] w, int offset, int len) {
        double sumAbs = 0;
        for (int i = 0; i < len; i++) {
            sumAbs += Math.abs(w[offset + i]);
        }
        return (float) (sumAbs / len);
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
