package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Deterministic float reductions. {@code reduceLanes(ADD)} leaves the order of additions open, and the interpreter,
 * C1 and C2 do not agree on it, so a sum could change as code warms up; the same prompt and seed must give the same
 * text in a cold and a warm JVM. This adds lanes in one fixed order (a pairwise tree) everywhere.
 */
final class Lanes {
    private Lanes() {
    }

    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;

    static float sum(FloatVector v) {
        int n = v.length();
        if (n == 16) {
            // 512-bit vectors: the two halves added lane by lane, then the 8-lane tree (16 lane reads in a row
            // cost more than the FMAs of a 64-wide row).
            v = ((FloatVector) v.reinterpretShape(F8, 0)).add((FloatVector) v.reinterpretShape(F8, 1));
            n = 8;
        }
        if (n == 8) {
            return ((v.lane(0) + v.lane(1)) + (v.lane(2) + v.lane(3)))
                    + ((v.lane(4) + v.lane(5)) + (v.lane(6) + v.lane(7)));
        }
        float s = 0;
        for (int i = 0; i < n; i++) {
            s += v.lane(i);
        }
        return s;
    }
}
