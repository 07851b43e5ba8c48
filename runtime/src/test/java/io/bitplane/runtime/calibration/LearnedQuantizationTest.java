package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Learned quantization starts exactly at the tensor it is given, writes back the same file bytes when nothing was
 * learned, and follows the LSQ gradient rules.
 */
class LearnedQuantizationTest {

    private static EncodedTensor tensor(String spec, int rows, int cols, long seed) {
        Random rnd = new Random(seed);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian() * 0.1f;
        }
        return Quantizer.quantize("m", new long[] {rows, cols}, w, QuantSpec.parse(spec), ActivationHint.INT8);
    }

    @Test
    void startsAtTheGivenTensorAndWritesItBackUnchanged() {
        // Odd shapes: a last group shorter than the others, one row.
        for (String spec : new String[] {"int8@32", "int4@32", "int4@16", "ternary", "ternary@64", "binary",
                "binary@64"}) {
            for (int[] shape : new int[][] {{3, 70}, {1, 64}, {5, 33}}) {
                EncodedTensor t = tensor(spec, shape[0], shape[1], spec.hashCode());
                LearnedQuantization lq = LearnedQuantization.of(t, QuantSpec.parse(spec));
                float[] used = new float[shape[0] * shape[1]];
                lq.weights(used);
                assertArrayEquals(Dequantizer.toFloats(t.spec(), t.segment()), used, 0, spec);
                EncodedTensor back = lq.encoded();
                assertEquals(t.spec(), back.spec(), spec);
                assertArrayEquals(t.bytes(), back.bytes(), spec + " " + shape[0] + "x" + shape[1]);
            }
        }
    }

    @Test
    void gradientsPassInsideTheRangeAndStopOutsideIt() {
        EncodedTensor t = tensor("int4@32", 1, 32, 3);
        LearnedQuantization lq = LearnedQuantization.of(t, QuantSpec.parse("int4@32"));
        float s = lq.scales[0];
        // Inside the range: w / s = 2.3 (code 2); beyond it: w / s = 9.5 (code 7, the INT4 maximum).
        lq.latent[0] = 2.3f * s;
        lq.latent[1] = 9.5f * s;
        for (int i = 2; i < 32; i++) {
            lq.latent[i] = 0;
        }
        float[] dw = new float[32];
        dw[0] = 1;
        dw[1] = 1;
        float[] dLatent = new float[32];
        float[] dScales = new float[1];
        lq.gradients(dw, dLatent, dScales);
        assertEquals(1, dLatent[0], 0);
        assertEquals(0, dLatent[1], 0);
        // LSQ: (code - w/s) inside, the clipped code outside.
        assertEquals((2 - 2.3f) + 7, dScales[0], 1e-5);
    }

    @Test
    void binaryCodesAreSignsAndTheirScaleGradientIsTheCode() {
        EncodedTensor t = tensor("binary", 1, 8, 4);
        LearnedQuantization lq = LearnedQuantization.of(t, QuantSpec.parse("binary"));
        float s = lq.scales[0];
        lq.latent[0] = -0.5f * s;
        lq.latent[1] = 2f * s;
        float[] used = new float[8];
        lq.weights(used);
        assertEquals(-s, used[0], 0);
        assertEquals(s, used[1], 0);
        float[] dw = {1, 1, 0, 0, 0, 0, 0, 0};
        float[] dLatent = new float[8];
        float[] dScales = new float[1];
        lq.gradients(dw, dLatent, dScales);
        assertEquals(1, dLatent[0], 0, "|w/s| <= 1 passes");
        assertEquals(0, dLatent[1], 0, "|w/s| > 1 stops");
        assertEquals(-1 + 1, dScales[0], 0);
    }

    @Test
    void codesOutsideTheEncodingAreRefused() {
        long[] shape = {1, 4};
        short[] scales = {0x3c00};
        assertThrows(IllegalArgumentException.class, () -> Quantizer.ofCodes("m", shape, QuantSpec.parse("int4@32"),
                ActivationHint.F32, new int[] {0, 8, 0, 0}, scales));
        assertThrows(IllegalArgumentException.class, () -> Quantizer.ofCodes("m", shape, QuantSpec.parse("binary"),
                ActivationHint.F32, new int[] {1, 0, 1, 1}, scales));
        assertThrows(IllegalArgumentException.class, () -> Quantizer.ofCodes("m", shape, QuantSpec.parse("ternary"),
                ActivationHint.F32, new int[] {1, 0, 1}, scales));
    }
}
