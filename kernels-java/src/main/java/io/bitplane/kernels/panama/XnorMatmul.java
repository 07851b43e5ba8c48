package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * BINARY weights x binary activations (XNOR-Net): products of signs are XNOR, sums of them popcounts.
 *
 * <pre>
 * W: plane 0 of [N][Wd] u64 words (Wd = ceil(K / 64)), bit k%64 of word k/64 set where w_k &lt; 0 (FORMAT.md 4);
 *    f16 scales at scalesOffset + 2*(n*groups + g)
 * x: [batch][Wd] u64 sign words, the same bit order (set where x_k &lt; 0), and one scale per token (mean |x|)
 * y[b][n] = xscale[b] * sum_g wscale[n][g] * (len_g - 2 popcount(w XOR x over group g))
 * </pre>
 * A group is a run of words, its first and last masked where it starts or ends inside one (groups of 32, say,
 * or bits past K). The sum over groups is in group order, as the reference's, so results are bit-identical.
 * Scalar code: {@code Long.bitCount} compiles to POPCNT, 64 products per instruction. The words between a group's
 * first and last are a plain counted loop of their own, which C2's SuperWord vectorizes: 4096x14336 from DRAM,
 * 113-190 -> 273-383 G weights/s, and 165 with -XX:-UseSuperWord (the loop had tested every word for the row's last).
 * <p>
 * Where vectors have 256 bits or more, {@link XnorTileMatmul} takes every such tensor but one with an infinite or
 * NaN scale, so these rows serve 128-bit vectors (NEON's width) and those tensors. Rows of one group had gone
 * sixteen at a time in vector lanes, each from its own run of the thread's rows (sixteen long streams of weights:
 * 185-189 G weights/s against 159-166 for eight adjacent rows on the Intel Xeon); the tiles read more (2026-12-07,
 * AMD EPYC, 4096x14336, 2 threads: 228-338 against 188-226, AVX2 code 136-244 against 100-135), and that code went.
 */
final class XnorMatmul {
    private XnorMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.BINARY
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL;
    }

    static void rows(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y, int batch,
                     int r0, int r1) {
        int n = Math.toIntExact(spec.rows());
        int k = Math.toIntExact(spec.cols());
        int words = Math.toIntExact(spec.wordsPerRow());
        int groups = Math.toIntExact(spec.groupsPerRow());
        int group = Math.toIntExact(spec.effectiveGroupSize());
        long scales = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long row = 8L * r * words;
            for (int b = 0; b < batch; b++) {
                int xo = b * words;
                float sum = 0;
                for (int g = 0; g < groups; g++) {
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    int mismatches = mismatches(w, row, xBits, xo, start, end);
                    float scale = Halfs.f16ToFloat(w.get(SHORT, scales + 2L * ((long) r * groups + g)));
                    sum += scale * (end - start - 2 * mismatches);
                }
                y[b * n + r] = sum * xScales[b];
            }
        }
    }

    /**
     * The popcount of weight XOR activation over values [start, end) of a row: the words between whole, the first
     * word from bit start % 64 and the last below bit end % 64 (all of it where that is 0), so a group may start or
     * end inside a word and the bits past K count nothing.
     */
    private static int mismatches(MemorySegment w, long row, long[] xBits, int xo, int start, int end) {
        int first = start >>> 6;
        int last = (end - 1) >>> 6;
        long firstMask = -1L << (start & 63);
        long lastMask = (end & 63) == 0 ? -1L : (1L << (end & 63)) - 1;
        long v = w.get(LONG, row + 8L * first) ^ xBits[xo + first];
        if (first == last) {
            return Long.bitCount(v & firstMask & lastMask);
        }
        int count = Long.bitCount(v & firstMask);
        for (int word = first + 1; word < last; word++) {
            count += Long.bitCount(w.get(LONG, row + 8L * word) ^ xBits[xo + word]);
        }
        return count + Long.bitCount((w.get(LONG, row + 8L * last) ^ xBits[xo + last]) & lastMask);
    }
}
