package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * Per-token activation quantization in vectors, bit for bit the scalar
 * {@link io.bitplane.kernels.ActivationQuantizer}'s.
 *
 * <p>INT8: {@link io.bitplane.kernels.ActivationQuantizer#quantizeInt8} in vectors, with the same codes bit for bit:
 * {@code s = max|x| / 127}, {@code q = clamp(Math.round(x / s), -127, 127)}, written as int16 codes.
 *
 * <pre>
 * x: [K] f32 (heap);  q16: [K] int16 codes;  returns s (0 for an all-zero token, whose codes are 0)
 * </pre>
 * The maximum is exact in any order and the division is the same IEEE operation lane by lane. The Vector API has no
 * rounding operation, so {@code Math.round} (nearest, ties toward positive infinity) is rebuilt exactly from
 * truncation: {@code f = floor(v)} by truncating and stepping down where that rose, then {@code f + 1} where
 * {@code v - f >= 0.5}; {@code v - f} is exact for |v| < 2^23, and here |v| <= 127 (NaN gives 0, as it does there).
 */
final class VectorQuantizer {
    private VectorQuantizer() {
    }

    /**
     * Eight float lanes where vectors have 256 bits or more, else four (128-bit vectors, NEON's width): a 256-bit
     * species there is not compiled to vector instructions but run as objects, and took about 100 us to quantize
     * 2048 values (ternary, K = 2048, at 128 bits: 256 rows a call read 3.2 G weights/s, 2048 rows 14; now 256
     * rows read 15.5).
     */
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 256
            ? FloatVector.SPECIES_256 : FloatVector.SPECIES_128;
    /** The codes of F's lanes as int16. */
    private static final VectorSpecies<Short> HALF =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));

    static float quantizeInt8(float[] x, int offset, int n, short[] q16, int qOffset) {
        int lanes = F.length();
        int upper = n - n % lanes;
        FloatVector maxAbs = FloatVector.zero(F);
        int i = 0;
        for (; i < upper; i += lanes) {
            maxAbs = maxAbs.max(FloatVector.fromArray(F, x, offset + i).abs());
        }
        float amax = maxAbs.reduceLanes(VectorOperators.MAX);  // exact in any order (NaN wins, as Math.max's)
        for (; i < n; i++) {
            amax = Math.max(amax, Math.abs(x[offset + i]));
        }
        float scale = amax / 127f;
        if (scale == 0) {
            java.util.Arrays.fill(q16, qOffset, qOffset + n, (short) 0);
            return 0;
        }
        i = 0;
        for (; i < upper; i += lanes) {
            FloatVector v = FloatVector.fromArray(F, x, offset + i).div(scale);
            FloatVector t = (FloatVector) ((IntVector) v.convert(VectorOperators.F2I, 0)).convert(VectorOperators.I2F,
                    0);
            FloatVector floor = t.sub(1f, v.compare(VectorOperators.LT, t));
            VectorMask<Float> up = v.sub(floor).compare(VectorOperators.GE, 0.5f);
            FloatVector rounded = floor.add(1f, up).max(-127f).min(127f);
            ((ShortVector) rounded.convertShape(VectorOperators.F2S, HALF, 0)).intoArray(q16, qOffset + i);
        }
        for (; i < n; i++) {
            q16[qOffset + i] = (short) Math.max(-127, Math.min(127, Math.round(x[offset + i] / scale)));
        }
        return scale;
    }

    /**
     * {@link io.bitplane.kernels.ActivationQuantizer#binarize} in vectors, with the same scale bit for bit (its
     * eight running sums are this species' lanes, combined by the same pairing): sets bit i%64 of word
     * {@code bits[bitsOffset + i/64]} where {@code x[offset + i] < 0}, clears the other bits of those words, and
     * returns {@code mean |x|}.
     */
    private static final ThreadLocal<float[]> LANE_SUMS = ThreadLocal.withInitial(() -> new float[F.length()]);

    static float binarize(float[] x, int offset, int n, long[] bits, int bitsOffset) {
        if (F.length() != 8) {  // the scale's eight running sums are the lanes: narrower vectors take the scalar twin
            return io.bitplane.kernels.ActivationQuantizer.signWords(x, offset, n, bits, bitsOffset);
        }
        java.util.Arrays.fill(bits, bitsOffset, bitsOffset + (n + 63) / 64, 0L);
        int lanes = F.length();
        int upper = n - n % lanes;
        FloatVector sums = FloatVector.zero(F);
        int i = 0;
        for (; i < upper; i += lanes) {
            FloatVector v = FloatVector.fromArray(F, x, offset + i);
            sums = sums.add(v.abs());
            bits[bitsOffset + (i >>> 6)] |= v.compare(VectorOperators.LT, 0f).toLong() << (i & 63);
        }
        float[] laneSums = LANE_SUMS.get(); // toArray() would be a new array every call
        sums.intoArray(laneSums, 0);
        float sum = io.bitplane.kernels.ActivationQuantizer.combineEight(laneSums);
        for (; i < n; i++) {
            sum += Math.abs(x[offset + i]);
            if (x[offset + i] < 0) {
                bits[bitsOffset + (i >>> 6)] |= 1L << (i & 63);
            }
        }
        return n == 0 ? 0 : sum / n;
    }
}
