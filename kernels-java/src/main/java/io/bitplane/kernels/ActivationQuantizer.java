package io.bitplane.kernels;

/**
 * Per-token symmetric INT8 quantization of activations (W8A8, W4A8): {@code s = max|x| / 127},
 * {@code q = round(x / s)} clamped to [-127, 127]; an all-zero token has scale 0 and codes 0.
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
}
