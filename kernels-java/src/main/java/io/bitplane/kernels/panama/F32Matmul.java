package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * F32 weights x F32 activations.
 *
 * <pre>
 * W: [N][K] f32, row n at byte 4*n*K of the mapped tensor (little-endian)
 * x: [batch][K] f32 on the heap;  y: [batch][N]
 * </pre>
 * Species: the preferred float species (8 lanes on AVX2); four accumulators over K hide the FMA latency. Tokens
 * of a batch run one after the other over each row (bit-identical to running them alone).
 */
final class F32Matmul {
    private F32Matmul() {
    }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    static void rows(MemorySegment w, int k, float[] x, float[] y, int n, int batch, int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            long base = 4L * r * k;
            // Every token goes through the same accumulation order, so a token's result never depends on the
            // batch it came in; the row stays in L1 while the batch passes over it.
            for (int b = 0; b < batch; b++) {
                y[b * n + r] = dot(w, base, x, b * k, k);
            }
        }
    }

    /** One row with one token: four independent accumulators. */
    static float dot(MemorySegment w, long base, float[] x, int x0, int k) {
        int lanes = F.length();
        int upper4 = k - k % (4 * lanes);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int i = 0;
        for (; i < upper4; i += 4 * lanes) {
            a0 = FloatVector.fromMemorySegment(F, w, base + 4L * i, ByteOrder.LITTLE_ENDIAN)
                    .fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = FloatVector.fromMemorySegment(F, w, base + 4L * (i + lanes), ByteOrder.LITTLE_ENDIAN)
                    .fma(FloatVector.fromArray(F, x, x0 + i + lanes), a1);
            a2 = FloatVector.fromMemorySegment(F, w, base + 4L * (i + 2 * lanes), ByteOrder.LITTLE_ENDIAN)
                    .fma(FloatVector.fromArray(F, x, x0 + i + 2 * lanes), a2);
            a3 = FloatVector.fromMemorySegment(F, w, base + 4L * (i + 3 * lanes), ByteOrder.LITTLE_ENDIAN)
                    .fma(FloatVector.fromArray(F, x, x0 + i + 3 * lanes), a3);
        }
        for (; i + lanes <= k; i += lanes) {
            a0 = FloatVector.fromMemorySegment(F, w, base + 4L * i, ByteOrder.LITTLE_ENDIAN)
                    .fma(FloatVector.fromArray(F, x, x0 + i), a0);
        }
        float sum = Lanes.sum(F, a0.add(a1).add(a2.add(a3)));
        for (; i < k; i++) {
            sum += w.get(PanamaBackend.FLOAT, base + 4L * i) * x[x0 + i];
        }
        return sum;
    }
}
