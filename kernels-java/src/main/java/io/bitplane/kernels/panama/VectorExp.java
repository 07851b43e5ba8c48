package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp(x) for float vectors from exactly rounded operations only (add, multiply, FMA, bit moves), so it gives the
 * same bits in the interpreter, C1 and C2, unlike {@code VectorOperators.EXP} (SVML when compiled, Math.exp when
 * not). Within 2 ulp of Math.exp on [-87, 88]; inputs below -87 give about 1e-38 instead of underflowing to 0.
 *
 * <pre>
 * x = n ln2 + r, |r| <= ln2 / 2;  n = x log2(e) rounded to nearest (by adding and subtracting 1.5 * 2^23)
 * exp(r) = 1 + r + r^2/2! + ... + r^7/7! (Horner, FMA);  2^n = float bits (n + 127) << 23
 * </pre>
 */
final class VectorExp {
    private VectorExp() {
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float ROUND = 12582912f; // 1.5 * 2^23: adding it rounds to an integer in the low bits
    private static final float[] C = {1f / 5040, 1f / 720, 1f / 120, 1f / 24, 1f / 6, 0.5f, 1f, 1f};

    /**
     * For vectors of the backend's species. The species is the constant {@link PanamaBackend#F}: taken from the
     * argument, it was not a constant to C2, and every call ran the Vector API's Java fallback (seen in a JFR
     * profile of the server, where softmax and SiLU spent more time than the attention).
     */
    static FloatVector exp(FloatVector x) {
        VectorSpecies<Float> sp = PanamaBackend.F;
        x = x.max(-87f).min(88f);
        FloatVector t = x.fma(FloatVector.broadcast(sp, LOG2E), FloatVector.broadcast(sp, ROUND));
        FloatVector n = t.sub(ROUND);
        FloatVector r = n.fma(FloatVector.broadcast(sp, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(sp, -LN2_LO), r);
        FloatVector p = FloatVector.broadcast(sp, C[0]);
        for (int i = 1; i < C.length; i++) {
            p = p.fma(r, FloatVector.broadcast(sp, C[i]));
        }
        IntVector bits = (IntVector) t.reinterpretAsInts().sub(Float.floatToRawIntBits(ROUND))
                .add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats());
    }

    /** The same computation for one float (tails of arrays), so a value does not depend on where it falls. */
    static float exp(float x) {
        x = Math.max(-87f, Math.min(88f, x));
        float t = Math.fma(x, LOG2E, ROUND);
        float n = t - ROUND;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = C[0];
        for (int i = 1; i < C.length; i++) {
            p = Math.fma(p, r, C[i]);
        }
        int bits = (Float.floatToRawIntBits(t) - Float.floatToRawIntBits(ROUND) + 127) << 23;
        return p * Float.intBitsToFloat(bits);
    }
}
