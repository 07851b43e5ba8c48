package io.bitplane.kernels.scalar;

import io.bitplane.kernels.FloatRows;

/** The reference {@link FloatRows}: plain loops (layouts in the interface). */
public final class ScalarFloatRows implements FloatRows {

    @Override
    public void product(float[] x, int n, int k, float[] b, int m, float[] y, boolean accumulate) {
        if (!accumulate) {
            java.util.Arrays.fill(y, 0, n * m, 0);
        }
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < k; i++) {
                float a = x[t * k + i];
                for (int j = 0; j < m; j++) {
                    y[t * m + j] += a * b[i * m + j];
                }
            }
        }
    }

    @Override
    public void addOuterProducts(float[] a, float[] x, int n, int m, int k, float[] c) {
        for (int t = 0; t < n; t++) {
            for (int j = 0; j < m; j++) {
                float g = a[t * m + j];
                for (int i = 0; i < k; i++) {
                    c[j * k + i] += g * x[t * k + i];
                }
            }
        }
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        for (int i = 0; i < n; i++) {
            y[yo + i] += alpha * x[xo + i];
        }
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) {
            sum += a[ao + i] * b[bo + i];
        }
        return sum;
    }

    @Override
    public void softmax(float[] a, int offset, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, a[offset + i]);
        }
        float sum = 0;
        for (int i = 0; i < n; i++) {
            a[offset + i] = (float) Math.exp(a[offset + i] - max);
            sum += a[offset + i];
        }
        float inv = 1 / sum;
        for (int i = 0; i < n; i++) {
            a[offset + i] *= inv;
        }
    }

    /** StrictMath: the same bits interpreted or compiled. */
    @Override
    public void exp(float[] a, int offset, int n) {
        for (int i = 0; i < n; i++) {
            a[offset + i] = (float) StrictMath.exp(a[offset + i]);
        }
    }
}
