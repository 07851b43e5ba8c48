package io.bitplane.kernels.panama;

import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * INT8 weights, with F32 activations or with INT8 activations (W8A8).
 *
 * <pre>
 * W: int8 q, row n at byte n*K;  scales: f16 at scalesOffset + 2*(n*groups + g);  w = q * s_g
 * x (F32 path): [batch][K] f32          y[n] = sum_g s_g * sum_{k in g} q_k x_k
 * x (W8A8 path): [batch][K] int16 codes  y[n] = s_x * sum_g s_g * (exact int sum_{k in g} q_k a_k)
 * </pre>
 * Species: F32 path widens 8 weight bytes (a quarter-width byte vector) to 8 float lanes (at 128 bits, 4 bytes read
 * as one int to 4 lanes). W8A8 widens 16 weight bytes to 16 int16 lanes (AVX2 has no byte multiply and the Vector
 * API no maddubs; 16-bit lanes are native), multiplies (|q a| <= 127 * 127 fits int16), then adds the two int16
 * halves of each int32 lane with shifts: exact integers, combined per group in the scalar kernel's order, so
 * results are bit-identical to the oracle. Used when the group size is a multiple of the vector length; other
 * tensors take the scalar kernel.
 */
final class Int8Matmul {
    private Int8Matmul() {
    }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Byte> B_QUARTER =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 4)));
    static final VectorSpecies<Short> S = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize()));
    static final VectorSpecies<Byte> B_HALF =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    /**
     * With 4 float lanes (128-bit vectors, as on NEON) no byte vector holds their 4 bytes: they are read as one int,
     * and lane i shifts byte i to the top (by 24 - 8 i) for an arithmetic shift down to sign-extend it.
     */
    private static final IntVector BYTE_TO_TOP = F.length() == 4
            ? IntVector.fromArray(PanamaBackend.I, new int[] {24, 16, 8, 0}, 0) : null;

    /**
     * True when this tensor's groups fit the vector loops, from 128-bit vectors (NEON's width) up.
     */
    static boolean supports(TensorSpec spec, boolean int8Activations) {
        int g = (int) spec.effectiveGroupSize();
        if (int8Activations) {
            return g % S.length() == 0;  // B_HALF holds S.length() bytes at every width
        }
        return (B_QUARTER.length() == F.length() || BYTE_TO_TOP != null) && g % F.length() == 0;
    }

    /** Rows whose weights are widened to floats together and then serve every token of the batch. */
    static final int ROW_BLOCK = 4;

    /**
     * F32 activations. Rows go in blocks of {@link #ROW_BLOCK}: their bytes are widened to floats once (exact) into
     * {@code codes} ([ROW_BLOCK][K]), then each token takes the same per-row arithmetic as it would alone (per group
     * a lane-wise FMA sum, scaled lane-wise into the row total, one fixed-order lane sum), so a token's result does
     * not depend on its batch, and the widening is paid once per batch instead of once per token. The four rows
     * of a block run side by side, each activation vector loaded feeding four FMAs.
     */
    static void rowsF32(TensorSpec spec, MemorySegment w, float[] x, float[] y, int batch, float[] codes,
                        int r0, int r1) {
        int k = (int) spec.cols();
        int n = (int) spec.rows();
        int group = (int) spec.effectiveGroupSize();
        int groups = (int) spec.groupsPerRow();
        long scales = spec.scalesOffset();
        int lanes = F.length();
        for (int rb = r0; rb < r1; rb += ROW_BLOCK) {
            int rows = Math.min(ROW_BLOCK, r1 - rb);
            for (int i = 0; i < rows; i++) {
                widenRow(w, (long) (rb + i) * k, k, codes, i * k);
            }
            if (rows < ROW_BLOCK) {
                // Short blocks repeat their last row: the extra sums are computed and dropped.
                for (int i = rows; i < ROW_BLOCK; i++) {
                    System.arraycopy(codes, (rows - 1) * k, codes, i * k, k);
                }
            }
            long s0 = scales + 2L * (rb * (long) groups);
            long s1 = scales + 2L * ((rb + Math.min(1, rows - 1)) * (long) groups);
            long s2 = scales + 2L * ((rb + Math.min(2, rows - 1)) * (long) groups);
            long s3 = scales + 2L * ((rb + Math.min(3, rows - 1)) * (long) groups);
            for (int b = 0; b < batch; b++) {
                int x0 = b * k;
                FloatVector t0 = FloatVector.zero(F);
                FloatVector t1 = FloatVector.zero(F);
                FloatVector t2 = FloatVector.zero(F);
                FloatVector t3 = FloatVector.zero(F);
                float tail0 = 0;
                float tail1 = 0;
                float tail2 = 0;
                float tail3 = 0;
                for (int g = 0; g < groups; g++) {
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    int vend = start + (end - start) / lanes * lanes;
                    FloatVector a0 = FloatVector.zero(F);
                    FloatVector a1 = FloatVector.zero(F);
                    FloatVector a2 = FloatVector.zero(F);
                    FloatVector a3 = FloatVector.zero(F);
                    for (int j = start; j < vend; j += lanes) {
                        FloatVector xv = FloatVector.fromArray(F, x, x0 + j);
                        a0 = FloatVector.fromArray(F, codes, j).fma(xv, a0);
                        a1 = FloatVector.fromArray(F, codes, k + j).fma(xv, a1);
                        a2 = FloatVector.fromArray(F, codes, 2 * k + j).fma(xv, a2);
                        a3 = FloatVector.fromArray(F, codes, 3 * k + j).fma(xv, a3);
                    }
                    float sc0 = scale(w, s0, g);
                    float sc1 = scale(w, s1, g);
                    float sc2 = scale(w, s2, g);
                    float sc3 = scale(w, s3, g);
                    t0 = a0.fma(FloatVector.broadcast(F, sc0), t0);
                    t1 = a1.fma(FloatVector.broadcast(F, sc1), t1);
                    t2 = a2.fma(FloatVector.broadcast(F, sc2), t2);
                    t3 = a3.fma(FloatVector.broadcast(F, sc3), t3);
                    if (vend < end) {
                        tail0 += sc0 * rest(codes, 0, x, x0, vend, end);
                        tail1 += sc1 * rest(codes, k, x, x0, vend, end);
                        tail2 += sc2 * rest(codes, 2 * k, x, x0, vend, end);
                        tail3 += sc3 * rest(codes, 3 * k, x, x0, vend, end);
                    }
                }
                int yo = b * n + rb;
                y[yo] = Lanes.sum(F, t0) + tail0;
                if (rows > 1) {
                    y[yo + 1] = Lanes.sum(F, t1) + tail1;
                }
                if (rows > 2) {
                    y[yo + 2] = Lanes.sum(F, t2) + tail2;
                }
                if (rows > 3) {
                    y[yo + 3] = Lanes.sum(F, t3) + tail3;
                }
            }
        }
    }

    private static float scale(MemorySegment w, long rowScales, int g) {
        return Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, rowScales + 2L * g));
    }

    /** The scalar end of a group: values [from, to) of the widened row at {@code c0}. */
    private static float rest(float[] codes, int c0, float[] x, int x0, int from, int to) {
        float r = 0;
        for (int j = from; j < to; j++) {
            r += codes[c0 + j] * x[x0 + j];
        }
        return r;
    }

    /** Row bytes {@code [at, at + k)} as floats into {@code codes[c0 ..]}. */
    private static void widenRow(MemorySegment w, long at, int k, float[] codes, int c0) {
        int lanes = F.length();
        int upper = k / lanes * lanes;
        int j = 0;
        for (; j < upper; j += lanes) {
            FloatVector v = BYTE_TO_TOP == null
                    ? (FloatVector) ByteVector.fromMemorySegment(B_QUARTER, w, at + j, ByteOrder.LITTLE_ENDIAN)
                            .convertShape(VectorOperators.B2F, F, 0)
                    : (FloatVector) IntVector.broadcast(PanamaBackend.I, w.get(PanamaBackend.INT, at + j))
                            .lanewise(VectorOperators.LSHL, BYTE_TO_TOP).lanewise(VectorOperators.ASHR, 24)
                            .convert(VectorOperators.I2F, 0);
            v.intoArray(codes, c0 + j);
        }
        for (; j < k; j++) {
            codes[c0 + j] = w.get(java.lang.foreign.ValueLayout.JAVA_BYTE, at + j);
        }
    }

    static void rowsInt8(TensorSpec spec, MemorySegment w, short[] q16, float[] tokenScales, float[] y, int batch,
                         int r0, int r1) {
        int k = (int) spec.cols();
        int n = (int) spec.rows();
        int group = (int) spec.effectiveGroupSize();
        int groups = (int) spec.groupsPerRow();
        long scales = spec.scalesOffset();
        int lanes = S.length();
        for (int r = r0; r < r1; r++) {
            long rowBase = (long) r * k;
            for (int b = 0; b < batch; b++) {
                int x0 = b * k;
                float sum = 0;
                for (int g = 0; g < groups; g++) {
                    float s = Halfs.f16ToFloat(w.get(PanamaBackend.SHORT, scales + 2L * (r * (long) groups + g)));
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    int vend = start + (end - start) / lanes * lanes;
                    IntVector acc = IntVector.zero(PanamaBackend.I);
                    for (int i = start; i < vend; i += lanes) {
                        ShortVector wv = (ShortVector) ByteVector.fromMemorySegment(B_HALF, w, rowBase + i,
                                ByteOrder.LITTLE_ENDIAN).convertShape(VectorOperators.B2S, S, 0);
                        IntVector p = wv.mul(ShortVector.fromArray(S, q16, x0 + i)).reinterpretAsInts();
                        acc = acc.add(p.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16))
                                .add(p.lanewise(VectorOperators.ASHR, 16));
                    }
                    int exact = acc.reduceLanes(VectorOperators.ADD); // integers: exact in any order
                    for (int i = vend; i < end; i++) {
                        exact += w.get(java.lang.foreign.ValueLayout.JAVA_BYTE, rowBase + i) * q16[x0 + i];
                    }
                    sum += s * exact + 0f;
                }
                y[b * n + r] = sum * tokenScales[b];
            }
        }
    }
}
