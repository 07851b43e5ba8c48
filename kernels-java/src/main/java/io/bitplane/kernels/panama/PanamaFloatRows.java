package io.bitplane.kernels.panama;

import io.bitplane.kernels.FloatRows;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link FloatRows} in vectors (layouts in the interface). In the products, each output strip of one vector is
 * accumulated in a register over the whole sum, four output rows at a time, so one load of a strip of the
 * right-hand side feeds four fused multiply-adds with broadcast scalars (the classic GEMM micro-kernel). Columns
 * past the last whole strip run as scalar code: masked loads and stores near the end of an array leave C2's fast
 * path (measured: a distillation run took twice as long with masked tails).
 *
 * <p>Each vector loop sits in its own small method that takes and returns no vector: callers (a training pass)
 * are large, and C2 stops inlining inside a large method, boxing any vector that crosses a call it did not
 * inline (DEVELOPERS.md, "Working on the Java kernels").
 */
public final class PanamaFloatRows implements FloatRows {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    @Override
    public void product(float[] x, int n, int k, float[] b, int m, float[] y, boolean accumulate) {
        int lanes = F.length();
        int whole = m - m % lanes;
        int t = 0;
        for (; t + 4 <= n; t += 4) {
            for (int j = 0; j < whole; j += lanes) {
                productBlock4(x, t, k, b, m, j, y, accumulate);
            }
        }
        for (; t < n; t++) {
            for (int j = 0; j < whole; j += lanes) {
                productBlock1(x, t, k, b, m, j, y, accumulate);
            }
        }
        if (whole < m) {
            // The columns past the last whole strip, in scalar code over contiguous rows of b.
            for (t = 0; t < n; t++) {
                if (!accumulate) {
                    java.util.Arrays.fill(y, t * m + whole, (t + 1) * m, 0);
                }
                for (int i = 0; i < k; i++) {
                    float a = x[t * k + i];
                    for (int j = whole; j < m; j++) {
                        y[t * m + j] = Math.fma(a, b[i * m + j], y[t * m + j]);
                    }
                }
            }
        }
    }

    /** Rows t..t+3 of y, columns j..j+lanes. */
    private static void productBlock4(float[] x, int t, int k, float[] b, int m, int j, float[] y,
                                      boolean accumulate) {
        int x0 = t * k;
        int y0 = t * m + j;
        FloatVector a0 = accumulate ? FloatVector.fromArray(F, y, y0) : FloatVector.zero(F);
        FloatVector a1 = accumulate ? FloatVector.fromArray(F, y, y0 + m) : FloatVector.zero(F);
        FloatVector a2 = accumulate ? FloatVector.fromArray(F, y, y0 + 2 * m) : FloatVector.zero(F);
        FloatVector a3 = accumulate ? FloatVector.fromArray(F, y, y0 + 3 * m) : FloatVector.zero(F);
        for (int i = 0; i < k; i++) {
            FloatVector bv = FloatVector.fromArray(F, b, i * m + j);
            a0 = bv.fma(FloatVector.broadcast(F, x[x0 + i]), a0);
            a1 = bv.fma(FloatVector.broadcast(F, x[x0 + k + i]), a1);
            a2 = bv.fma(FloatVector.broadcast(F, x[x0 + 2 * k + i]), a2);
            a3 = bv.fma(FloatVector.broadcast(F, x[x0 + 3 * k + i]), a3);
        }
        a0.intoArray(y, y0);
        a1.intoArray(y, y0 + m);
        a2.intoArray(y, y0 + 2 * m);
        a3.intoArray(y, y0 + 3 * m);
    }

    /** Row t of y, columns j..j+lanes. */
    private static void productBlock1(float[] x, int t, int k, float[] b, int m, int j, float[] y,
                                      boolean accumulate) {
        int y0 = t * m + j;
        FloatVector a = accumulate ? FloatVector.fromArray(F, y, y0) : FloatVector.zero(F);
        for (int i = 0; i < k; i++) {
            a = FloatVector.fromArray(F, b, i * m + j).fma(FloatVector.broadcast(F, x[t * k + i]), a);
        }
        a.intoArray(y, y0);
    }

    @Override
    public void addOuterProducts(float[] a, float[] x, int n, int m, int k, float[] c) {
        int lanes = F.length();
        int whole = k - k % lanes;
        int j = 0;
        for (; j + 4 <= m; j += 4) {
            for (int i = 0; i < whole; i += lanes) {
                outerBlock4(a, x, n, m, k, c, j, i);
            }
        }
        for (; j < m; j++) {
            for (int i = 0; i < whole; i += lanes) {
                outerBlock1(a, x, n, m, k, c, j, i);
            }
        }
        if (whole < k) {
            // The columns past the last whole strip, in scalar code over contiguous rows of x.
            for (int t = 0; t < n; t++) {
                for (j = 0; j < m; j++) {
                    float g = a[t * m + j];
                    for (int i = whole; i < k; i++) {
                        c[j * k + i] = Math.fma(g, x[t * k + i], c[j * k + i]);
                    }
                }
            }
        }
    }

    /** Rows j..j+3 of c, columns i..i+lanes. */
    private static void outerBlock4(float[] a, float[] x, int n, int m, int k, float[] c, int j, int i) {
        int c0 = j * k + i;
        FloatVector s0 = FloatVector.fromArray(F, c, c0);
        FloatVector s1 = FloatVector.fromArray(F, c, c0 + k);
        FloatVector s2 = FloatVector.fromArray(F, c, c0 + 2 * k);
        FloatVector s3 = FloatVector.fromArray(F, c, c0 + 3 * k);
        for (int t = 0; t < n; t++) {
            FloatVector xv = FloatVector.fromArray(F, x, t * k + i);
            int at = t * m + j;
            s0 = xv.fma(FloatVector.broadcast(F, a[at]), s0);
            s1 = xv.fma(FloatVector.broadcast(F, a[at + 1]), s1);
            s2 = xv.fma(FloatVector.broadcast(F, a[at + 2]), s2);
            s3 = xv.fma(FloatVector.broadcast(F, a[at + 3]), s3);
        }
        s0.intoArray(c, c0);
        s1.intoArray(c, c0 + k);
        s2.intoArray(c, c0 + 2 * k);
        s3.intoArray(c, c0 + 3 * k);
    }

    /** Row j of c, columns i..i+lanes. */
    private static void outerBlock1(float[] a, float[] x, int n, int m, int k, float[] c, int j, int i) {
        FloatVector s = FloatVector.fromArray(F, c, j * k + i);
        for (int t = 0; t < n; t++) {
            s = FloatVector.fromArray(F, x, t * k + i).fma(FloatVector.broadcast(F, a[t * m + j]), s);
        }
        s.intoArray(c, j * k + i);
    }

    @Override
    public void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int lanes = F.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            FloatVector yv = FloatVector.fromArray(F, y, yo + i);
            FloatVector.fromArray(F, x, xo + i).fma(FloatVector.broadcast(F, alpha), yv).intoArray(y, yo + i);
        }
        for (; i < n; i++) {
            y[yo + i] = Math.fma(x[xo + i], alpha, y[yo + i]);
        }
    }

    @Override
    public float dot(float[] a, int ao, float[] b, int bo, int n) {
        int lanes = F.length();
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        for (; i + lanes <= n; i += lanes) {
            acc = FloatVector.fromArray(F, a, ao + i).fma(FloatVector.fromArray(F, b, bo + i), acc);
        }
        // A fixed order (reduceLanes(ADD) may add lanes in another order once compiled), so that runs repeat.
        float sum = Lanes.sum(F, acc);
        for (; i < n; i++) {
            sum = Math.fma(a[ao + i], b[bo + i], sum);
        }
        return sum;
    }

    @Override
    public void softmax(float[] a, int offset, int n) {
        VectorAttention.softmax(a, offset, n);
    }

    /** {@link VectorExp}: exactly rounded steps only, so the same bits in every compilation tier. */
    @Override
    public void exp(float[] a, int offset, int n) {
        int lanes = F.length();
        int i = 0;
        for (; i + lanes <= n; i += lanes) {
            VectorExp.exp(FloatVector.fromArray(F, a, offset + i)).intoArray(a, offset + i);
        }
        for (; i < n; i++) {
            a[offset + i] = VectorExp.exp(a[offset + i]);
        }
    }
}
