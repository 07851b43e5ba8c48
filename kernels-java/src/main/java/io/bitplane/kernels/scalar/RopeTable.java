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

    public boolean fits(int headSize, float theta, int position) {
        return this.headSize == headSize && this.theta == theta && position < positions;
    }
}
