package io.bitplane.kernels.scalar;

/**
 * The cosines and sines of rotary embeddings, computed once per (head size, theta) and position instead of for
 * every token: {@code cos[pos * half + i]} for pair i of a head. Each entry is computed by exactly the expression
 * llama2.c uses, so cached and uncached decoding are bit-identical. Immutable; grows by replacement.
 */
public final class RopeTable {
    public final int headSize;
    public final float theta;
    public final int positions;
    public final float[] cos;
    public final float[] sin;

    public RopeTable(int headSize, float theta, int positions) {
        this.headSize = headSize;
        this.theta = theta;
        this.positions = positions;
        int half = headSize / 2;
        cos = new float[positions * half];
        sin = new float[positions * half];
        for (int i = 0; i < half; i++) {
            int headDim = 2 * i;
            float freq = 1.0f / (float) Math.pow(theta, headDim / (float) headSize);
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

    public boolean fits(int headSize, float theta, int position) {
        return this.headSize == headSize && this.theta == theta && position < positions;
    }
}
