package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
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
    private static final VectorSpecies<Float> F16 = FloatVector.SPECIES_512;
    // Lane i's partner at each level of the tree: i ^ 8 (512 bits only), i ^ 4, i ^ 2, i ^ 1.
    private static final VectorShuffle<Float> HALVES16 = VectorShuffle.fromOp(F16, i -> i ^ 8);
    private static final VectorShuffle<Float> QUADS16 = VectorShuffle.fromOp(F16, i -> i ^ 4);
    private static final VectorShuffle<Float> PAIRS16 = VectorShuffle.fromOp(F16, i -> i ^ 2);
    private static final VectorShuffle<Float> LANES16 = VectorShuffle.fromOp(F16, i -> i ^ 1);
    private static final VectorShuffle<Float> QUADS8 = VectorShuffle.fromOp(F8, i -> i ^ 4);
    private static final VectorShuffle<Float> PAIRS8 = VectorShuffle.fromOp(F8, i -> i ^ 2);
    private static final VectorShuffle<Float> LANES8 = VectorShuffle.fromOp(F8, i -> i ^ 1);
    private static final VectorSpecies<Float> F4 = FloatVector.SPECIES_128;
    private static final VectorShuffle<Float> PAIRS4 = VectorShuffle.fromOp(F4, i -> i ^ 2);
    private static final VectorShuffle<Float> LANES4 = VectorShuffle.fromOp(F4, i -> i ^ 1);

    /**
     * The sum of the lanes as the tree {@code ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))}, a 512-bit vector's
     * halves first added lane by lane. Each level adds every lane to its partner's (a + b and b + a are the same
     * float), so lane 0 ends with the tree's sum after three (or four) shuffles and adds: reading the lanes one
     * by one had cost C2 a shuffle and a mask per lane, and attention's scores more than their multiply-adds.
     * <p>
     * {@code species} is {@code v}'s, a constant at every call: the width is chosen from it, not from {@code v},
     * because C2 parses this method once per caller, often before it knows {@code v}'s exact class (a loop's sum),
     * and then follows the profile of these calls, which 256- and 512-bit callers share. Inlined for both widths,
     * the two results met in one value that C2 could keep only as an object: with 512-bit vectors (AVX-512) and
     * heads of 8 (attention's 256-bit sums), every softmax allocated two vectors and their arrays, 36 KB a
     * stories260K token (JFR allocation samples).
     */
    static float sum(VectorSpecies<Float> species, FloatVector v) {
        int n = species.length();
        if (n == 16) {
            v = v.add(v.rearrange(HALVES16));
            v = v.add(v.rearrange(LANES16));
            v = v.add(v.rearrange(PAIRS16));
            return v.add(v.rearrange(QUADS16)).lane(0);
        }
        if (n == 8) {
            v = v.add(v.rearrange(LANES8));
            v = v.add(v.rearrange(PAIRS8));
            return v.add(v.rearrange(QUADS8)).lane(0);
        }
        if (n == 4) {  // 128 bits: attention (heads of 8) took 7-12% less time than reading the four lanes
            v = v.add(v.rearrange(LANES4));
            return v.add(v.rearrange(PAIRS4)).lane(0);
        }
        float s = 0;
        for (int i = 0; i < n; i++) {
            s += v.lane(i);
        }
        return s;
    }
}
