package io.bitplane.format.quant;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.TestTensors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each quantizer against the definition of its encoding, over odd shapes (one row, K not a multiple of the group
 * or of 64, K = 1). The reference here recomputes each group's scale and codes independently of the quantizer.
 */
class QuantizerTest {
    private static final int[][] SHAPES = {{1, 1}, {1, 64}, {3, 65}, {5, 100}, {2, 172}, {7, 257}, {1, 300}};

    private static EncodedTensor quantize(float[] w, int rows, int cols, String spec) {
        return Quantizer.quantize("w", new long[] {rows, cols}, w, QuantSpec.parse(spec), ActivationHint.F32);
    }

    private static float[] dequant(EncodedTensor t) {
        return Dequantizer.toFloats(t.spec(), t.segment());
    }

    @Test
    void int8IsRoundToNearestWithTheF16AbsmaxScale() {
        Random rnd = new Random(1);
        for (int[] s : SHAPES) {
            float[] w = TestTensors.gaussian(rnd, s[0] * s[1], 0.1f);
            EncodedTensor t = quantize(w, s[0], s[1], "int8@32");
            float[] d = dequant(t);
            for (int r = 0; r < s[0]; r++) {
                for (int g = 0; g * 32 < s[1]; g++) {
                    float amax = 0;
                    for (int i = g * 32; i < Math.min(s[1], g * 32 + 32); i++) {
                        amax = Math.max(amax, Math.abs(w[r * s[1] + i]));
                    }
                    float scale = Halfs.f16ToFloat(Halfs.floatToF16(amax / 127));
                    for (int i = g * 32; i < Math.min(s[1], g * 32 + 32); i++) {
                        int q = Math.max(-127, Math.min(127, Math.round(w[r * s[1] + i] / scale)));
                        assertEquals(q * scale, d[r * s[1] + i], 0f, "row " + r + " col " + i);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"int4-rtn@32", "int4@32", "int4@64", "int4-asym@32", "int4-asym-rtn@128"})
    void int4ValuesLieOnTheGroupGridAndTheSearchNeverLosesToRoundToNearest(String spec) {
        Random rnd = new Random(2);
        boolean asym = spec.contains("asym");
        int group = Integer.parseInt(spec.substring(spec.indexOf('@') + 1));
        for (int[] s : SHAPES) {
            float[] w = TestTensors.gaussian(rnd, s[0] * s[1], 0.1f);
            EncodedTensor t = quantize(w, s[0], s[1], spec);
            EncodedTensor rtn = quantize(w, s[0], s[1], spec.replace("@", "-rtn@").replace("-rtn-rtn", "-rtn"));
            float[] d = dequant(t);
            float[] dr = dequant(rtn);
            for (int r = 0; r < s[0]; r++) {
                for (int g = 0; g * group < s[1]; g++) {
                    double err = 0;
                    double errRtn = 0;
                    for (int i = g * group; i < Math.min(s[1], (g + 1) * group); i++) {
                        int k = r * s[1] + i;
                        float scale = Dequantizer.scale(t.spec(), t.segment(), r, i);
                        // Every value is (u - 8) s, or u s + m: u recovered from the value is an integer 0..15.
                        float min = asym ? d[k] - Math.round((d[k] - d[r * s[1] + g * group]) / scale) * scale : 0;
                        assertTrue(Float.isFinite(d[k]));
                        if (!asym && scale != 0) {
                            float u = d[k] / scale + 8;
                            assertEquals(Math.round(u), u, 1e-3, "code of value " + k);
                            assertTrue(u > -0.5 && u < 15.5);
                        }
                        assertTrue(Float.isFinite(min));
                        err += (w[k] - d[k]) * (w[k] - d[k]);
                        errRtn += (w[k] - dr[k]) * (w[k] - dr[k]);
                    }
                    assertTrue(err <= errRtn * (1 + 1e-6) + 1e-12, "group " + g + " of row " + r + ": " + err
                            + " > round-to-nearest " + errRtn);
                }
            }
        }
    }

    @Test
    void int4RoundToNearestErrorIsAtMostHalfAStep() {
        Random rnd = new Random(3);
        float[] w = TestTensors.gaussian(rnd, 4 * 96, 0.1f);
        EncodedTensor t = quantize(w, 4, 96, "int4-rtn@32");
        float[] d = dequant(t);
        for (int k = 0; k < w.length; k++) {
            float scale = Math.abs(Dequantizer.scale(t.spec(), t.segment(), k / 96, k % 96));
            // The extreme maps to -8 (up to f16 rounding of the scale) and everything else rounds, except values
            // on the other side beyond 7.5 steps, which clip to +7: at most one step away, as in ggml's Q4_0.
            float bound = Math.abs(w[k]) > 7.5f * scale ? scale : 0.5f * scale;
            assertTrue(Math.abs(w[k] - d[k]) <= bound + Math.abs(w[k]) * 2e-3f, "value " + k);
        }
    }

    @Test
    void ternaryAbsmeanIsBitNetsRule() {
        Random rnd = new Random(4);
        for (int[] s : SHAPES) {
            float[] w = TestTensors.gaussian(rnd, s[0] * s[1], 0.1f);
            float[] d = dequant(quantize(w, s[0], s[1], "ternary"));
            for (int r = 0; r < s[0]; r++) {
                double sum = 0;
                for (int i = 0; i < s[1]; i++) {
                    sum += Math.abs(w[r * s[1] + i]);
                }
                float scale = Halfs.f16ToFloat(Halfs.floatToF16((float) (sum / s[1])));
                for (int i = 0; i < s[1]; i++) {
                    int tq = Math.max(-1, Math.min(1, Math.round(w[r * s[1] + i] / scale)));
                    assertEquals(tq * scale, d[r * s[1] + i], 0f);
                }
            }
        }
    }

    @Test
    void ternaryTwnThresholdsAtSevenTenthsOfTheMeanMagnitude() {
        Random rnd = new Random(5);
        float[] w = TestTensors.gaussian(rnd, 3 * 200, 0.1f);
        float[] d = dequant(quantize(w, 3, 200, "ternary-twn"));
        for (int r = 0; r < 3; r++) {
            double sum = 0;
            for (int i = 0; i < 200; i++) {
                sum += Math.abs(w[r * 200 + i]);
            }
            double delta = 0.7 * sum / 200;
            for (int i = 0; i < 200; i++) {
                float v = w[r * 200 + i];
                assertEquals(Math.abs(v) > delta, d[r * 200 + i] != 0, "value " + i);
                if (Math.abs(v) > delta) {
                    assertEquals(Math.signum(v), Math.signum(d[r * 200 + i]));
                }
            }
        }
    }

    @Test
    void binaryIsSignTimesMeanMagnitudePerRow() {
        Random rnd = new Random(6);
        for (int[] s : SHAPES) {
            float[] w = TestTensors.gaussian(rnd, s[0] * s[1], 0.1f);
            float[] d = dequant(quantize(w, s[0], s[1], "binary"));
            for (int r = 0; r < s[0]; r++) {
                double sum = 0;
                for (int i = 0; i < s[1]; i++) {
                    sum += Math.abs(w[r * s[1] + i]);
                }
                float alpha = Halfs.f16ToFloat(Halfs.floatToF16((float) (sum / s[1])));
                for (int i = 0; i < s[1]; i++) {
                    assertEquals(w[r * s[1] + i] < 0 ? -alpha : alpha, d[r * s[1] + i], 0f);
                }
            }
        }
    }

    @Test
    void paddingBitsStayZeroAndTernarySignsOnlyWhereTheMaskIsSet() {
        Random rnd = new Random(7);
        float[] w = TestTensors.gaussian(rnd, 3 * 70, 0.1f);
        EncodedTensor t = quantize(w, 3, 70, "ternary");
        TensorSpec s = t.spec();
        for (int r = 0; r < 3; r++) {
            for (int c = 0; c < 128; c++) {
                int mask = Dequantizer.bit(s, t.segment(), r, 0, c);
                int sign = Dequantizer.bit(s, t.segment(), r, 1, c);
                if (c >= 70) {
                    assertEquals(0, mask | sign, "padding bit " + c);
                }
                assertTrue(sign <= mask);
            }
        }
    }

    @Test
    void nonFiniteWeightsAreRejectedWithTheTensorName() {
        float[] w = {1, Float.NaN, 3, 4};
        var e = assertThrows(IllegalArgumentException.class,
                () -> Quantizer.quantize("blk.3.attn_q.weight", new long[] {2, 2}, w, QuantSpec.parse("int4"),
                        ActivationHint.F32));
        assertTrue(e.getMessage().contains("blk.3.attn_q.weight"), e.getMessage());
    }

    @Test
    void specsReadBackFromTheirTextForm() {
        for (String s : new String[] {"f32", "f16", "bf16", "int8@32", "int4@64", "int4-rtn@128", "int4-asym@32",
                "ternary@0", "ternary-twn@64", "binary@0"}) {
            assertEquals(s, QuantSpec.parse(s).toString());
        }
        assertEquals(QuantSpec.parse("int4@32"), QuantSpec.parse("int4"));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("int3"));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("int4@0"));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("f16@32"));
    }
}
