package io.bitplane.kernels.panama;

import io.bitplane.kernels.FloatRows;
import io.bitplane.kernels.scalar.ScalarFloatRows;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * The vector dense products against the scalar reference on random shapes: widths below, at and past a vector's
 * lanes and not multiples of them, one row, row counts that are not multiples of the four-row blocks, and vectors
 * at offsets inside larger arrays. Float sums differ only by rounding (fused multiply-adds), so the comparison is
 * relative to the magnitude of the terms.
 */
class PanamaFloatRowsTest {
    private static final int[] WIDTHS = {1, 3, 7, 8, 15, 16, 17, 32, 33, 64, 172};
    private final FloatRows scalar = new ScalarFloatRows();
    private final FloatRows vector = new PanamaFloatRows();
    private final Random rnd = new Random(11);

    @Test
    void theLookupPicksTheVectorProductsWhereTheVectorApiRuns() {
        assertInstanceOf(PanamaFloatRows.class, FloatRows.get());
    }

    @Test
    void productMatchesTheReference() {
        for (int n : new int[] {1, 3, 4, 5, 9}) {
            for (int k : WIDTHS) {
                for (int m : WIDTHS) {
                    float[] x = random(n * k);
                    float[] b = random(k * m);
                    for (boolean accumulate : new boolean[] {false, true}) {
                        float[] start = random(n * m + 5);
                        float[] expected = start.clone();
                        float[] actual = start.clone();
                        scalar.product(x, n, k, b, m, expected, accumulate);
                        vector.product(x, n, k, b, m, actual, accumulate);
                        assertClose(expected, actual, k + 1, "product n=" + n + " k=" + k + " m=" + m);
                        // Past the output, nothing is touched.
                        for (int i = n * m; i < start.length; i++) {
                            assertEquals(start[i], actual[i], 0);
                        }
                    }
                }
            }
        }
    }

    @Test
    void outerProductsMatchTheReference() {
        for (int n : new int[] {1, 2, 6, 13}) {
            for (int m : WIDTHS) {
                for (int k : WIDTHS) {
                    float[] a = random(n * m);
                    float[] x = random(n * k);
                    float[] start = random(m * k);
                    float[] expected = start.clone();
                    float[] actual = start.clone();
                    scalar.addOuterProducts(a, x, n, m, k, expected);
                    vector.addOuterProducts(a, x, n, m, k, actual);
                    assertClose(expected, actual, n + 1, "outer n=" + n + " m=" + m + " k=" + k);
                }
            }
        }
    }

    @Test
    void axpyDotAndSoftmaxMatchTheReferenceAtOffsets() {
        for (int n = 0; n < 70; n++) {
            int xo = rnd.nextInt(9);
            int yo = rnd.nextInt(9);
            float[] x = random(n + xo);
            float[] y = random(n + yo + 3);
            float alpha = rnd.nextFloat() * 4 - 2;
            float[] expected = y.clone();
            float[] actual = y.clone();
            scalar.axpy(alpha, x, xo, expected, yo, n);
            vector.axpy(alpha, x, xo, actual, yo, n);
            assertClose(expected, actual, 2, "axpy n=" + n);
            assertEquals(y[n + yo], actual[n + yo], 0, "axpy wrote past its range");

            float d1 = scalar.dot(x, xo, y, yo, n);
            float d2 = vector.dot(x, xo, y, yo, n);
            assertEquals(d1, d2, 1e-5 * (n + 1), "dot n=" + n);

            if (n > 0) {
                float[] s = random(n + yo + 2);
                for (int i = 0; i < s.length; i++) {
                    s[i] *= 20;
                }
                float[] se = s.clone();
                float[] sa = s.clone();
                scalar.softmax(se, yo, n);
                vector.softmax(sa, yo, n);
                assertClose(se, sa, 1, "softmax n=" + n);
                float sum = 0;
                for (int i = 0; i < n; i++) {
                    sum += sa[yo + i];
                }
                assertEquals(1, sum, 1e-5, "softmax sums to one");
                assertEquals(s[yo + n], sa[yo + n], 0, "softmax wrote past its range");
                if (yo > 0) {
                    assertEquals(s[yo - 1], sa[yo - 1], 0, "softmax wrote before its range");
                }
                float[] ee = s.clone();
                float[] ea = s.clone();
                scalar.exp(ee, yo, n);
                vector.exp(ea, yo, n);
                for (int i = 0; i < ee.length; i++) {
                    // Within a few ulp of StrictMath, and nothing outside the range touched.
                    assertEquals(ee[i], ea[i], 4 * Math.ulp(ee[i]), "exp n=" + n + " at " + i);
                }
                assertEquals(s[yo + n], ea[yo + n], 0, "exp wrote past its range");
            }
        }
    }

    private float[] random(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = rnd.nextFloat() * 2 - 1;
        }
        return a;
    }

    /** Within float rounding of a sum of {@code terms} terms of magnitude at most one. */
    private static void assertClose(float[] expected, float[] actual, int terms, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], 2e-6 * terms + 1e-6 * Math.abs(expected[i]), what + " at " + i);
        }
    }
}
