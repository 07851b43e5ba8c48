package io.bitplane.kernels.scalar;

/**
 * The cosines and sines of rotary embeddings, computed once per (head size, theta, frequency factors) and position
 * instead of for every token: {@code cos[pos * half + i]} for pair i of a head. Each entry is computed by exactly
 * the expression llama2.c uses (with no factors), so cached and uncached decoding are bit-identical. Immutable;
 * grows by replacement.
 */
public final class RopeTable {
    public final int headSize;
    public final float theta;
    /** Null, or each frequency's divisor (rope scaling); the caller's array, not to be changed. */
    public final float[] freqFactors;
    public final int positions;
    public final float[] cos;
    public final float[] sin;

    public RopeTable(int headSize, float theta, float[] freqFactors, int positions) {
        if (freqFactors != null && freqFactors.length != headSize / 2) {
            throw new IllegalArgumentException("rope: " + freqFactors.length + " frequency factors for a head of "
                    + headSize + " (one per pair)");
        }
        this.headSize = headSize;
        this.theta = theta;
        this.freqFactors = freqFactors;
        this.positions = positions;
        int half = headSize / 2;
        cos = new float[positions * half];
        sin = new float[positions * half];
        for (int i = 0; i < half; i++) {
            int headDim = 2 * i;
            float freq = 1.0f / (float) Math.pow(theta, headDim / (float) headSize);
            if (freqFactors != null) {
                freq /= freqFactors[i];
            }
            for (int pos = 0; pos < positions; pos++) {
                float val = pos * freq;
                cos[pos * half + i] = (float) Math.cos(val);
                sin[pos * half + i] = (float) Math.sin(val);
            }
        }
    }

    /**
     * Rotates the pairs of every head of one token, {@code a[offset .. offset + width)} (width a multiple of the
     * head size), to {@code position}: {@code (v0, v1) -> (v0 cos - v1 sin, v0 sin + v1 cos)}, llama2.c's order.
     * {@code inverse} rotates back (sin negated), which is also the rotation's backward step.
     */
    public void rotate(float[] a, int offset, int width, int position, boolean inverse) {
        int half = headSize / 2;
        int row = position * half;
        for (int i = 0; i < width; i += 2) {
            int pair = (i % headSize) / 2;
            float fcr = cos[row + pair];
            float fci = inverse ? -sin[row + pair] : sin[row + pair];
            int at = offset + i;
            float v0 = a[at];
            float v1 = a[at + 1];
            a[at] = v0 * fcr - v1 * fci;
            a[at + 1] = v0 * fci + v1 * fcr;
        }
    }

    /**
     * {@code current} if it covers {@code maxPosition} for these parameters, else a new table that does: twice as
     * many positions as a table of the same parameters had (at least 512), so growing costs log(context) tables.
     */
    public static RopeTable covering(RopeTable current, int headSize, float theta, float[] freqFactors,
                                     int maxPosition) {
        if (current != null && current.fits(headSize, theta, freqFactors, maxPosition)) {
            return current;
        }
        boolean same = current != null && current.fits(headSize, theta, freqFactors, 0);
        return new RopeTable(headSize, theta, freqFactors, Math.max(maxPosition + 1, same ? 2 * current.positions
                : 512));
    }

    public boolean fits(int headSize, float theta, float[] freqFactors, int position) {
        return this.headSize == headSize && this.theta == theta && position < positions
                && (this.freqFactors == freqFactors || java.util.Arrays.equals(this.freqFactors, freqFactors));
    }
}
