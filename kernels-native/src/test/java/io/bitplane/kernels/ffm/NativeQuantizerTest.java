package io.bitplane.kernels.ffm;

import io.bitplane.kernels.ActivationQuantizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The C activation quantizer gives exactly the Java reference's codes and scale: random tokens of every length,
 * exact ties (half-way values round up, as Math.round does), values next to halves at other scales, zeros, and
 * tokens holding NaN or infinity.
 */
class NativeQuantizerTest {
    static NativeKernels kernels;

    @BeforeAll
    static void load() {
        NativeAvailability.assumeLoaded();
        kernels = NativeLibrary.kernels();
    }

    static void assertSameAsJava(float[] x, String what) {
        byte[] expected = new byte[x.length];
        float expectedScale = ActivationQuantizer.quantizeInt8(x, 0, x.length, expected);
        byte[] actual = new byte[x.length];
        float actualScale = kernels.quantizeI8(MemorySegment.ofArray(x), x.length, MemorySegment.ofArray(actual));
        assertEquals(Float.floatToIntBits(expectedScale), Float.floatToIntBits(actualScale), what + ": scale");
        assertArrayEquals(expected, actual, what + ": codes");
    }

    @Test
    void randomTokensOfEveryLengthMatchTheReference() {
        Random rnd = new Random(8);
        for (int n = 1; n <= 130; n++) {
            float[] x = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(7) - 3));
            }
            assertSameAsJava(x, "length " + n);
        }
        float[] big = new float[5632];
        for (int i = 0; i < big.length; i++) {
            big[i] = (float) rnd.nextGaussian();
        }
        assertSameAsJava(big, "5632 values");
    }

    @Test
    void tiesRoundUpAsMathRoundDoes() {
        // max |x| = 127 makes the scale exactly 1, so x / s are the values themselves: every half-way case.
        float[] x = new float[70];
        for (int i = 0; i < x.length; i++) {
            x[i] = (i - 35) + 0.5f;
        }
        x[0] = 127;
        x[1] = -126.5f;
        x[2] = 0.49999997f;
        x[3] = -0.49999997f;
        x[4] = -0.5f;
        assertSameAsJava(x, "ties");
    }

    @Test
    void valuesNextToHalvesMatchTheReference() {
        // (c + 1/2) s and its float neighbours for scales that are not powers of two: where x * (1 / s) and x / s
        // can round to different codes (a quantizer that multiplied, dividing only near halves, was tried against
        // this: docs/PERFORMANCE.md, "Activations quantized by a product").
        Random rnd = new Random(9);
        for (int round = 0; round < 300; round++) {
            float amax = (float) (1e-3 * Math.pow(1e5, rnd.nextDouble()));
            float s = amax / 127;
            float[] x = new float[1 + 3 * 254];
            x[0] = rnd.nextBoolean() ? amax : -amax;
            int i = 1;
            for (int c = -127; c < 127; c++) {
                float half = (c + 0.5f) * s;
                x[i++] = Math.nextDown(half);
                x[i++] = half;
                x[i++] = Math.nextUp(half);
            }
            assertSameAsJava(x, "max |x| " + amax);
        }
    }

    @Test
    void zerosNanAndInfinityMatchTheReference() {
        assertSameAsJava(new float[40], "zeros");
        float[] nan = new float[40];
        nan[17] = Float.NaN;
        nan[3] = 2;
        assertSameAsJava(nan, "NaN");
        float[] inf = new float[40];
        inf[33] = Float.NEGATIVE_INFINITY;
        inf[2] = 1;
        assertSameAsJava(inf, "infinity");
        float[] both = new float[9];
        both[8] = Float.NaN;
        both[0] = Float.POSITIVE_INFINITY;
        assertSameAsJava(both, "NaN and infinity");
    }
}
