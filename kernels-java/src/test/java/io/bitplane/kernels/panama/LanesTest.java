package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** {@link Lanes#sum} adds in its documented tree, bit for bit, for 128-, 256- and 512-bit vectors. */
class LanesTest {
    private static final VectorSpecies<Float> F4 = FloatVector.SPECIES_128;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;

    @Test
    void sumIsThePairwiseTreeOfTheLanes() {
        Random rnd = new Random(3);
        for (int rep = 0; rep < 2000; rep++) {
            float[] a = new float[16];
            for (int i = 0; i < a.length; i++) {
                // Magnitudes far apart, so that another order of additions rounds differently.
                a[i] = (float) (rnd.nextGaussian() * Math.pow(10, rnd.nextInt(9) - 4));
            }
            float[] h = new float[8];
            for (int i = 0; i < 8; i++) {
                h[i] = a[i] + a[i + 8];
            }
            assertEquals(tree(a), Lanes.sum(F8, FloatVector.fromArray(F8, a, 0)), "256 bits");
            assertEquals(tree(h), Lanes.sum(F16, FloatVector.fromArray(F16, a, 0)), "512 bits");
            assertEquals((a[0] + a[1]) + (a[2] + a[3]), Lanes.sum(F4, FloatVector.fromArray(F4, a, 0)), "128 bits");
        }
    }

    private static float tree(float[] l) {
        return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
}
