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
 * Groups are whole rows or whole words (a multiple of 64 values), so a group is a run of words; bits past K in the
 * last word are masked. The sum over groups is in group order, as the reference's, so results are bit-identical.
 * It is scalar code: {@code Long.bitCount} compiles to POPCNT, 64 products per instruction, which the Vector API's
 * lane-wise bit count does not beat on AVX2.
 */
final class XnorMatmul {
    private XnorMatmul() {
    }

    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static boolean supports(TensorSpec spec) {
        return spec.encoding() == Encoding.BINARY && spec.activations() == ActivationHint.BINARY
                && spec.layout() == TensorSpec.LAYOUT_CANONICAL && spec.groupSize() % 64 == 0;
    }

    static void rows(TensorSpec spec, MemorySegment w, long[] xBits, float[] xScales, float[] y, int batch,
                     int r0, int r1) {
        int n = Math.toIntExact(spec.rows());
        int k = Math.toIntExact(spec.cols());
        int words = Math.toIntExact(spec.wordsPerRow());
        int groups = Math.toIntExact(spec.groupsPerRow());
        int group = Math.toIntExact(spec.effectiveGroupSize());
        int groupWords = (group + 63) / 64;
        long lastMask = k % 64 == 0 ? -1L : (1L << (k % 64)) - 1;
        long scales = spec.scalesOffset();
        for (int r = r0; r < r1; r++) {
            long row = 8L * r * words;
            for (int b = 0; b < batch; b++) {
                int xo = b * words;
                float sum = 0;
                for (int g = 0; g < groups; g++) {
                    int w0 = g * groupWords;
                    int w1 = Math.min(words, w0 + groupWords);
                    int mismatches = 0;
                    int word = w0;
                    for (; word < w1 - 1; word++) {
                        mismatches += Long.bitCount(w.get(LONG, row + 8L * word) ^ xBits[xo + word]);
                    }
                    long last = w.get(LONG, row + 8L * word) ^ xBits[xo + word];
                    mismatches += Long.bitCount(word == words - 1 ? last & lastMask : last);
                    int len = Math.min(k, (g + 1) * group) - g * group;
                    float scale = Halfs.f16ToFloat(w.get(SHORT, scales + 2L * ((long) r * groups + g)));
                    sum += scale * (len - 2 * mismatches);
                }
                y[b * n + r] = sum * xScales[b];
            }
        }
    }
}
