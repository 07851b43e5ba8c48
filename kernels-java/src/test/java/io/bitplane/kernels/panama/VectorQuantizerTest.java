package io.bitplane.kernels.panama;

import io.bitplane.kernels.ActivationQuantizer;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The vector quantizer gives the scalar quantizer's scale and codes exactly, ties and edge values included. */
class VectorQuantizerTest {
    private static void assertSameAsScalar(float[] x, int offset, int n) {
        byte[] expected = new byte[n];
        float expectedScale = ActivationQuantizer.quantizeInt8(x, offset, n, expected);
        short[] actual = new short[n + 3];
        float scale = VectorQuantizer.quantizeInt8(x, offset, n, actual, 3);
        assertEquals(Float.floatToRawIntBits(expectedScale), Float.floatToRawIntBits(scale), "scale");
        short[] widened = new short[n + 3];
        for (int i = 0; i < n; i++) {
            widened[3 + i] = expected[i];
        }
        assertArrayEquals(widened, actual, "codes");
    }

    @Test
    void randomTokensOfEveryLengthAndOffset() {
        Random rnd = new Random(5);
        for (int n : new int[] {1, 7, 8, 9, 31, 64, 100, 2048, 5633}) {
            for (int offset : new int[] {0, 3}) {
                float[] x = new float[offset + n];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(7) - 3));
                }
                assertSameAsScalar(x, offset, n);
            }
        }
    }

    @Test
    void tiesAndValuesNextToThemRoundAsMathRound() {
        // amax 127 makes the scale 1, so x / s = x: halves, values a hair on either side, negative ties.
        float[] x = new float[64];
        x[0] = 127f;
        float[] probes = {0.5f, -0.5f, 1.5f, -1.5f, 2.5f, -2.5f, 126.5f, -126.5f, Math.nextDown(0.5f),
            Math.nextUp(0.5f), Math.nextDown(-0.5f), Math.nextUp(-0.5f), Math.nextDown(2.5f), Math.nextUp(-2.5f),
            0f, -0f, 1e-30f, -1e-30f, 126.99999f, -127f, 3.4999998f, -3.5000002f};
        System.arraycopy(probes, 0, x, 1, probes.length);
        assertSameAsScalar(x, 0, x.length);
    }

    @Test
    void zeroTokensAndNonFiniteValuesMatchToo() {
        assertSameAsScalar(new float[40], 0, 40);
        float[] nan = new float[24];
        nan[5] = Float.NaN;
        nan[9] = 3f;
        assertSameAsScalar(nan, 0, 24);
        float[] inf = new float[24];
        inf[2] = Float.POSITIVE_INFINITY;
        inf[7] = -1f;
        assertSameAsScalar(inf, 0, 24);
    }

    /** Binarization: the same scale bits as the scalar reference and a sign bit exactly where its code is -1. */
    @Test
    void binarizationMatchesTheScalarReference() {
        Random rnd = new Random(6);
        for (int n : new int[] {0, 1, 7, 8, 9, 63, 64, 65, 129, 1000, 5633}) {
            for (int offset : new int[] {0, 5}) {
                float[] x = new float[offset + n];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(7) - 3));
                }
                if (n > 3) {
                    x[offset] = -0.0f;
                    x[offset + 1] = 0.0f;
                    x[offset + 2] = Float.NaN;
                }
                byte[] codes = new byte[n];
                float expected = ActivationQuantizer.binarize(x, offset, n, codes, 0);
                int words = (n + 63) / 64;
                long[] bits = new long[words + 2];
                java.util.Arrays.fill(bits, -1L); // stale bits must be cleared
                float actual = VectorQuantizer.binarize(x, offset, n, bits, 1);
                assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual), "scale, n " + n);
                for (int i = 0; i < words * 64; i++) {
                    boolean negative = (bits[1 + i / 64] >>> (i % 64) & 1) == 1;
                    assertEquals(i < n && codes[i] == -1, negative, "bit " + i + " of n " + n);
                }
                assertEquals(-1L, bits[0], "wrote before its words");
                assertEquals(-1L, bits[words + 1], "wrote past its words");
            }
        }
    }
}
