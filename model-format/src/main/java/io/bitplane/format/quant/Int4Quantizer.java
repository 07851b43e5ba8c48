package io.bitplane.format.quant;

import io.bitplane.format.Halfs;

/**
 * INT4 per group, symmetric ({@code w = (u - 8) s}) or asymmetric ({@code w = u s + m}), u in 0..15.
 *
 * <p>Round-to-nearest uses the group's extreme value; the clipping search also tries narrower ranges and keeps the
 * one with the least squared error, since clipping a rare outlier usually buys precision for all the other values.
 * Every candidate is evaluated with its scale already rounded to f16, which is what the file will hold.
 */
final class Int4Quantizer {
    private Int4Quantizer() {
    }

    /** Clip factors tried by the search: 1.0 down to 0.70. */
    private static final int SEARCH_STEPS = 16;
    private static final float SEARCH_LOW = 0.70f;

    /** Quantizes one group; writes its bits and returns its f16 scale. */
    static short symmetricGroup(String name, float[] w, int offset, int len, int col0, Quantizer.PlaneRow out,
                                QuantSpec.Method method) {
        short scale = symmetricScale(name, w, offset, len, method);
        float s = Halfs.f16ToFloat(scale);
        for (int i = 0; i < len; i++) {
            writeNibble(out, col0 + i, symmetricCode(w[offset + i], s));
        }
        return scale;
    }

    /** The f16 scale of a symmetric group: from its extreme value, or the best clipped one under CLIP_SEARCH. */
    static short symmetricScale(String name, float[] w, int offset, int len, QuantSpec.Method method) {
        // The signed extreme: mapping it to -8 uses the whole range [-8, 7] (ggml's Q4_0 choice); a negative
        // scale then maps positive extremes to -8 as well.
        float extreme = 0;
        for (int i = 0; i < len; i++) {
            float v = w[offset + i];
            if (Math.abs(v) > Math.abs(extreme)) {
                extreme = v;
            }
        }
        short best = Halfs.scaleToF16(extreme / -8f, name);
        if (method == QuantSpec.Method.CLIP_SEARCH) {
            double bestErr = symmetricError(w, offset, len, Halfs.f16ToFloat(best));
            for (int step = 0; step <= SEARCH_STEPS; step++) {
                float clip = 1f - (1f - SEARCH_LOW) * step / SEARCH_STEPS;
                for (float divisor : new float[] {-8f, 7f}) {
                    short cand = Halfs.scaleToF16(extreme * clip / divisor, name);
                    double err = symmetricError(w, offset, len, Halfs.f16ToFloat(cand));
                    if (err < bestErr) {
                        bestErr = err;
                        best = cand;
                    }
                }
            }
        }
        return best;
    }

    /** The stored nibble u (the value is (u - 8) s). */
    static int symmetricCode(float v, float s) {
        if (s == 0) {
            return 8;
        }
        return Math.max(0, Math.min(15, Math.round(v / s) + 8));
    }

    private static double symmetricError(float[] w, int offset, int len, float s) {
        double err = 0;
        for (int i = 0; i < len; i++) {
            float v = w[offset + i];
            double d = v - (symmetricCode(v, s) - 8) * s;
            err += d * d;
        }
        return err;
    }

    /** Quantizes one group; writes its bits, its f16 scale and its f16 min. */
    static void asymmetricGroup(String name, float[] w, int offset, int len, int col0, Quantizer.PlaneRow out,
                                QuantSpec.Method method, short[] scales, short[] mins, int gi) {
        float lo = Float.POSITIVE_INFINITY;
        float hi = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < len; i++) {
            lo = Math.min(lo, w[offset + i]);
            hi = Math.max(hi, w[offset + i]);
        }
        short bestS = Halfs.scaleToF16((hi - lo) / 15f, name);
        short bestM = Halfs.scaleToF16(lo, name);
        if (method == QuantSpec.Method.CLIP_SEARCH) {
            double bestErr = asymmetricError(w, offset, len, Halfs.f16ToFloat(bestS), Halfs.f16ToFloat(bestM));
            float range = hi - lo;
            // Shrink either end of the range by up to 15% in steps of 3%.
            for (int a = 0; a <= 5; a++) {
                for (int b = 0; b <= 5; b++) {
                    float l = lo + range * 0.03f * a;
                    float h = hi - range * 0.03f * b;
                    short cs = Halfs.scaleToF16((h - l) / 15f, name);
                    short cm = Halfs.scaleToF16(l, name);
                    double err = asymmetricError(w, offset, len, Halfs.f16ToFloat(cs), Halfs.f16ToFloat(cm));
                    if (err < bestErr) {
                        bestErr = err;
                        bestS = cs;
                        bestM = cm;
                    }
                }
            }
        }
        float s = Halfs.f16ToFloat(bestS);
        float m = Halfs.f16ToFloat(bestM);
        for (int i = 0; i < len; i++) {
            writeNibble(out, col0 + i, asymmetricCode(w[offset + i], s, m));
        }
        scales[gi] = bestS;
        mins[gi] = bestM;
    }

    private static int asymmetricCode(float v, float s, float m) {
        if (s == 0) {
            return 0;
        }
        return Math.max(0, Math.min(15, Math.round((v - m) / s)));
    }

    private static double asymmetricError(float[] w, int offset, int len, float s, float m) {
        double err = 0;
        for (int i = 0; i < len; i++) {
            float v = w[offset + i];
            double d = v - (asymmetricCode(v, s, m) * s + m);
            err += d * d;
        }
        return err;
    }

    static void writeNibble(Quantizer.PlaneRow out, int col, int u) {
        for (int p = 0; p < 4; p++) {
            if ((u >>> p & 1) != 0) {
                out.set(p, col);
            }
        }
    }
}
