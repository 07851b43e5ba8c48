package io.bitplane.kernels.panama;

import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.scalar.ScalarMatmul;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * F16 and BF16 weights x F32 activations: the half-precision baselines beside {@link F32Matmul}, and what
 * safetensors (BF16, F16) and GGUF (F16) imports hold when they are not quantized.
 *
 * <pre>
 * W: [N][K] u16, row n at byte 2*n*K of the mapped tensor (little-endian): IEEE binary16 (F16) or the high half
 *    of an f32 (BF16)
 * x: [batch][K] f32 on the heap;  y: [batch][N]
 * </pre>
 * Each vector of F lanes loads F halves (a vector of half the width) and widens them to int lanes, sign extended,
 * then makes them floats:
 * <ul>
 * <li>BF16: the f32 bits are h &lt;&lt; 16.</li>
 * <li>F16: (h &lt;&lt; 13) &amp; 0x8FFFE000 puts the sign at bit 31 (bit 31 of the shifted lane is a copy of the
 *   sign, sign extension) and the 15 bits of exponent and mantissa at bits 13-27: as an f32, 2^-112 times the
 *   half's value for every finite half, subnormals included, so one multiply by 2^112 (exact: a power of two)
 *   gives it. Infinities and NaNs (exponent 31) would come out finite: the loops keep the largest exponent field
 *   they met, and a row that met one is summed as the reference kernel sums it.</li>
 * </ul>
 * One token: the halves are made floats as they are read, into four accumulators over K as in F32Matmul. Batches: each
 * row is made floats once, into the thread's row of native f32, and {@link F32Matmul#dot} sums it with every token: the
 * same operations in the same order, so a result does not depend on the batch. Another order than the reference's
 * (equal within rounding). JMH MatmulBenchmark 4096x4096: converting once for one token too ran it 1.5-3x slower (3-4x
 * into a heap array); for batches it is 1.3-2x faster than converting per token. The loops are written out, and their
 * lanes go through an array to Lanes#sum: helpers taking vectors (Lanes#sum too) were compiled apart from these large
 * methods and boxed their vectors on every call.
 */
final class HalfMatmul {
    private HalfMatmul() {
    }

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** F halves: a vector of half F's width (128 bits on AVX2, 64 where vectors have 128 bits, as NEON's). */
    private static final VectorSpecies<Short> H =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    /** The F16 exponent field: all ones in infinities and NaNs. */
    private static final int F16_EXPONENT = 0x7C00;
    /** Where h &lt;&lt; 13 holds the sign (bit 31) and the exponent and mantissa (bits 13-27) of a half. */
    private static final int F16_BITS = 0x8FFFE000;
    private static final float TWO_TO_112 = 0x1p112f;

    /** F16 and BF16 weights with float activations, where vectors have at least 4 float lanes. */
    static boolean supports(TensorSpec spec) {
        Encoding e = spec.encoding();
        return (e == Encoding.F16 || e == Encoding.BF16) && spec.rank() == 2 && F.length() >= 4
                && spec.cols() <= Integer.MAX_VALUE / 2;
    }

    /** Per worker thread: the accumulators' lanes, for {@link #sumInOrder}. */
    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[F.length()]);

    static void rows(TensorSpec spec, MemorySegment w, float[] x, float[] y, int batch, int r0, int r1) {
        if (batch > 1) {
            rowsOnce(spec, w, x, y, batch, r0, r1);
            return;
        }
        int k = (int) spec.cols();
        boolean bf16 = spec.encoding() == Encoding.BF16;
        float[] lanes = LANES.get();
        for (int r = r0; r < r1; r++) {
            long base = 2L * r * k;
            float sum = bf16 ? dotBf16(w, base, x, 0, k, lanes) : dotF16(w, base, x, 0, k, lanes);
            if (!bf16 && Float.isNaN(sum)) {
                // An infinity or NaN in the row (or a NaN from the activations, which the reference keeps too)
                ScalarMatmul.matmul(spec, w, x, y, 1, r, r + 1);
            } else {
                y[r] = sum;
            }
        }
    }

    /** Per worker thread: one row as f32, in native memory (vector loads from a heap array ran slower). */
    private static final ThreadLocal<MemorySegment[]> ROW = ThreadLocal.withInitial(() -> new MemorySegment[1]);

    /**
     * Batches: each row converted once into f32 (the thread's native row), then F32Matmul#dot for every token:
     * the same operations in the same order as the one-token sums, so a result does not depend on the batch. A row
     * holding an F16 infinity or NaN is summed as the reference sums it, as alone.
     */
    private static void rowsOnce(TensorSpec spec, MemorySegment w, float[] x, float[] y, int batch, int r0,
                                 int r1) {
        int k = (int) spec.cols();
        int n = (int) spec.rows();
        boolean bf16 = spec.encoding() == Encoding.BF16;
        MemorySegment[] holder = ROW.get();
        if (holder[0] == null || holder[0].byteSize() < 4L * k) {
            holder[0] = Arena.ofAuto().allocate(4L * k, 64);
        }
        MemorySegment row = holder[0];
        for (int r = r0; r < r1; r++) {
            long base = 2L * r * k;
            if (bf16 ? toFloatsBf16(w, base, k, row) : toFloatsF16(w, base, k, row)) {
                ScalarMatmul.matmul(spec, w, x, y, batch, r, r + 1);  // an infinity or NaN: the reference's sums
                continue;
            }
            for (int b = 0; b < batch; b++) {
                y[b * n + r] = F32Matmul.dot(row, 0, x, b * k, k);
            }
        }
    }

    /** Row {@code base}'s K BF16 halves into {@code out} as f32; false (nothing to report, unlike F16). */
    private static boolean toFloatsBf16(MemorySegment w, long base, int k, MemorySegment out) {
        int n = F.length();
        int i = 0;
        for (; i + n <= k; i += n) {
            ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE).convertShape(VectorOperators.S2I, I, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoMemorySegment(out, 4L * i, LE);
        }
        for (; i < k; i++) {
            out.set(PanamaBackend.FLOAT, 4L * i, Halfs.bf16ToFloat(w.get(PanamaBackend.SHORT, base + 2L * i)));
        }
        return false;
    }

    /** Row {@code base}'s K F16 halves into {@code out} as f32; true where the row holds an infinity or a NaN. */
    private static boolean toFloatsF16(MemorySegment w, long base, int k, MemorySegment out) {
        int n = F.length();
        IntVector exponents = IntVector.zero(I);
        int i = 0;
        for (; i + n <= k; i += n) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            exponents = exponents.max(h.and(F16_EXPONENT));
            h.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .intoMemorySegment(out, 4L * i, LE);
        }
        boolean special = exponents.compare(VectorOperators.EQ, F16_EXPONENT).anyTrue();
        for (; i < k; i++) {
            short h = w.get(PanamaBackend.SHORT, base + 2L * i);
            special |= (h & F16_EXPONENT) == F16_EXPONENT;
            out.set(PanamaBackend.FLOAT, 4L * i, Halfs.f16ToFloat(h));
        }
        return special;
    }

    /** One row with one token; NaN where the row holds an F16 infinity or NaN (see the class comment). */
    private static float dotF16(MemorySegment w, long base, float[] x, int x0, int k, float[] lanes) {
        int n = F.length();
        int upper4 = k - k % (4 * n);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        IntVector exponents = IntVector.zero(I);
        int i = 0;
        for (; i < upper4; i += 4 * n) {
            IntVector h0 = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector h1 = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + n), LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector h2 = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + 2 * n), LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            IntVector h3 = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + 3 * n), LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            exponents = exponents.max(h0.and(F16_EXPONENT)).max(h1.and(F16_EXPONENT))
                    .max(h2.and(F16_EXPONENT)).max(h3.and(F16_EXPONENT));
            a0 = h0.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = h1.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .fma(FloatVector.fromArray(F, x, x0 + i + n), a1);
            a2 = h2.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .fma(FloatVector.fromArray(F, x, x0 + i + 2 * n), a2);
            a3 = h3.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .fma(FloatVector.fromArray(F, x, x0 + i + 3 * n), a3);
        }
        for (; i + n <= k; i += n) {
            IntVector h = (IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0);
            exponents = exponents.max(h.and(F16_EXPONENT));
            a0 = h.lanewise(VectorOperators.LSHL, 13).and(F16_BITS).reinterpretAsFloats().mul(TWO_TO_112)
                    .fma(FloatVector.fromArray(F, x, x0 + i), a0);
        }
        boolean special = exponents.compare(VectorOperators.EQ, F16_EXPONENT).anyTrue();
        a0.add(a1).add(a2.add(a3)).intoArray(lanes, 0);
        float sum = sumInOrder(lanes);
        for (; i < k; i++) {
            short h = w.get(PanamaBackend.SHORT, base + 2L * i);
            special |= (h & F16_EXPONENT) == F16_EXPONENT;
            sum += Float.float16ToFloat(h) * x[x0 + i];
        }
        return special ? Float.NaN : sum;
    }

    /** One row with one token. */
    private static float dotBf16(MemorySegment w, long base, float[] x, int x0, int k, float[] lanes) {
        int n = F.length();
        int upper4 = k - k % (4 * n);
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        int i = 0;
        for (; i < upper4; i += 4 * n) {
            a0 = ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats().fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + n), LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats().fma(FloatVector.fromArray(F, x, x0 + i + n), a1);
            a2 = ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + 2 * n), LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats().fma(FloatVector.fromArray(F, x, x0 + i + 2 * n), a2);
            a3 = ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * (i + 3 * n), LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats().fma(FloatVector.fromArray(F, x, x0 + i + 3 * n), a3);
        }
        for (; i + n <= k; i += n) {
            a0 = ((IntVector) ShortVector.fromMemorySegment(H, w, base + 2L * i, LE)
                    .convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                    .reinterpretAsFloats().fma(FloatVector.fromArray(F, x, x0 + i), a0);
        }
        a0.add(a1).add(a2.add(a3)).intoArray(lanes, 0);
        float sum = sumInOrder(lanes);
        for (; i < k; i++) {
            sum += Float.intBitsToFloat(w.get(PanamaBackend.SHORT, base + 2L * i) << 16) * x[x0 + i];
        }
        return sum;
    }

    /**
     * The lanes' sum in Lanes#sum's fixed order, from the array: a method of its own that takes no vector, so that
     * C2 inlines Lanes#sum here whether or not it inlines this into the loops.
     */
    private static float sumInOrder(float[] lanes) {
        return Lanes.sum(F, FloatVector.fromArray(F, lanes, 0));
    }
}
