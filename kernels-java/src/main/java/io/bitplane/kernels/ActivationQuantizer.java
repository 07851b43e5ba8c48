package io.bitplane.kernels;

/**
 * Per-token quantization of activations. INT8 (W8A8, W4A8): {@code s = max|x| / 127}, {@code q = round(x / s)}
 * clamped to [-127, 127]; an all-zero token has scale 0 and codes 0. BINARY (XNOR-Net): {@code s = mean |x|}, the
 * code {@code -1} where {@code x < 0}, else {@code +1} (so 0, -0 and NaN give +1).
 */
public final class ActivationQuantizer {
    private ActivationQuantizer() {
    }

    /** Quantizes {@code x[offset .. offset + n)} into {@code q[0 .. n)} and returns the scale. */
    public static float quantizeInt8(float[] x, int offset, int n, byte[] q) {
        return quantizeInt8(x, offset, n, q, 0);
    }

    /** Quantizes {@code x[offset .. offset + n)} into {@code q[qOffset .. qOffset + n)} and returns the scale. */
    public static float quantizeInt8(float[] x, int offset, int n, byte[] q, int qOffset) {
        float amax = 0;
        for (int i = 0; i < n; i++) {
            amax = Math.max(amax, Math.abs(x[offset + i]));
        }
        float scale = amax / 127f;
        if (scale == 0) {
            java.util.Arrays.fill(q, qOffset, qOffset + n, (byte) 0);
            return 0;
        }
        for (int i = 0; i < n; i++) {
            q[qOffset + i] = (byte) Math.max(-127, Math.min(127, Math.round(x[offset + i] / scale)));
        }
        return scale;
    }

    /** Binarizes {@code x[offset .. offset + n)} into codes {@code q[qOffset ..]} of -1 and +1; returns the scale. */
    public static float binarize(float[] x, int offset, int n, byte[] q, int qOffset) {
        for (int i = 0; i < n; i++) {
            q[qOffset + i] = (byte) (x[offset + i] < 0 ? -1 : 1);
        }
        return meanAbs(x, offset, n);
    }

    /**
     * {@link #binarize} as sign words for XNOR kernels: sets bit i%64 of {@code bits[bitsOffset + i/64]} where
     * {@code x[offset + i] < 0} (clearing the other bits of those words); returns the same scale.
     */
    public static float signWords(float[] x, int offset, int n, long[] bits, int bitsOffset) {
        java.util.Arrays.fill(bits, bitsOffset, bitsOffset + (n + 63) / 64, 0L);
        for (int i = 0; i < n; i++) {
            if (x[offset + i] < 0) {
                bits[bitsOffset + (i >>> 6)] |= 1L << (i & 63);
            }
        }
        return meanAbs(x, offset, n);
    }

    /**
     * {@code mean |x|} in a fixed order, so that a vector implementation can give the same bits: eight running
     * sums over the whole blocks of eight (sum j takes values 8i + j), combined as
     * {@code ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))}, then the remaining values in order, then divided
     * by n (0 for n = 0).
     */
    public static float meanAbs(float[] x, int offset, int n) {
        // Eight locals, not an array: the array was 48 bytes of garbage per token (the JIT kept it).
        float s0 = 0;
        float s1 = 0;
        float s2 = 0;
        float s3 = 0;
        float s4 = 0;
        float s5 = 0;
        float s6 = 0;
        float s7 = 0;
        int upper = n - n % 8;
        for (int i = offset; i < offset + upper; i += 8) {
            s0 += Math.abs(x[i]);
            s1 += Math.abs(x[i + 1]);
            s2 += Math.abs(x[i + 2]);
            s3 += Math.abs(x[i + 3]);
            s4 += Math.abs(x[i + 4]);
            s5 += Math.abs(x[i + 5]);
            s6 += Math.abs(x[i + 6]);
            s7 += Math.abs(x[i + 7]);
        }
        float sum = combineEight(s0, s1, s2, s3, s4, s5, s6, s7);
        for (int i = upper; i < n; i++) {
            sum += Math.abs(x[offset + i]);
        }
        return n == 0 ? 0 : sum / n;
    }

    /** The fixed pairing of eight partial sums used by {@link #meanAbs}. */
    public static float combineEight(float[] s) {
        return combineEight(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]);
    }

    private static float combineEight(float s0, float s1, float s2, float s3, float s4, float s5, float s6,
                                      float s7) {
        return ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7));
    }
}
