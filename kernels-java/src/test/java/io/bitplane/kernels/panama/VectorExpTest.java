package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VectorExpTest {
    @Test
    void withinTwoUlpOfMathExpAndTheSameInVectorAndScalarForm() {
        Random rnd = new Random(3);
        float[] x = new float[FloatVector.SPECIES_PREFERRED.length()];
        for (int iter = 0; iter < 20_000; iter++) {
            for (int i = 0; i < x.length; i++) {
                x[i] = (rnd.nextFloat() * 2 - 1) * (iter % 2 == 0 ? 87f : 5f);
            }
            float[] v = VectorExp.exp(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).toArray();
            for (int i = 0; i < x.length; i++) {
                float exact = (float) Math.exp(x[i]);
                assertTrue(Math.abs(v[i] - exact) <= 2 * Math.ulp(exact), x[i] + ": " + v[i] + " vs " + exact);
                assertEquals(Float.floatToRawIntBits(VectorExp.exp(x[i])), Float.floatToRawIntBits(v[i]),
                        "scalar and vector forms agree at " + x[i]);
            }
        }
        assertEquals(1f, VectorExp.exp(0f));
        assertTrue(VectorExp.exp(-1000f) < 1e-37f && VectorExp.exp(-1000f) >= 0f);
    }
}
