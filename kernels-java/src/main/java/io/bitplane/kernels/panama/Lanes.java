package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;

/**
 * Deterministic float reductions. {@code reduceLanes(ADD)} leaves the order of additions open, and the interpreter,
 * C1 and C2 do not agree on it, so a sum could change as code warms up; the same prompt and seed must give the same
 * text in a cold and a warm JVM. This adds lanes in one fixed order (a pairwise tree) everywhere.
 */
final class Lanes {
    private Lanes() {
    }

    static float sum(FloatVector v) {
        int n = v.length();
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
