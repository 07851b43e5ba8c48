package io.bitplane.format;

import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/** Random tensors and small models for tests, deterministic by seed. */
public final class TestTensors {
    private TestTensors() {
    }

    /** Gaussian values with a few outliers, as trained weights have. */
    public static float[] gaussian(Random rnd, int n, float std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (rnd.nextGaussian() * std);
            if (rnd.nextInt(97) == 0) {
                v[i] *= 6;
            }
        }
        return v;
    }

    /** One tensor of every encoding (and odd shapes), as they would be written to a file. */
    public static List<EncodedTensor> everyEncoding(Random rnd) {
        List<EncodedTensor> out = new ArrayList<>();
        String[] specs = {"f32", "f16", "bf16", "int8@32", "int4@32", "int4-asym@64", "ternary", "ternary@64",
                "binary", "int4-rtn@128"};
        int i = 0;
        for (String s : specs) {
            int rows = 1 + rnd.nextInt(9);
            int cols = 1 + rnd.nextInt(300);
            float[] w = gaussian(rnd, rows * cols, 0.05f);
            out.add(Quantizer.quantize("t" + (i++) + "." + s, new long[] {rows, cols}, w, QuantSpec.parse(s),
                    ActivationHint.F32));
        }
        out.add(EncodedTensor.ofFloats(TensorSpec.of("norm", Encoding.F32, 0, 7), gaussian(rnd, 7, 1)));
        return out;
    }

    public static ModelMetadata tinyMetadata() {
        ModelConfig c = new ModelConfig(8, 16, 1, 2, 1, 4, 32, 10000f, 1e-5f, true);
        List<byte[]> tokens = List.of("<unk>".getBytes(), "<s>".getBytes(), "</s>".getBytes(),
                new byte[] {(byte) 0xff, 'x'});
        Vocabulary v = new Vocabulary("llama", tokens, new float[] {0, 0, 0, -1.5f}, new int[] {2, 3, 3, 1}, 1, 2, 5,
                null);
        return new ModelMetadata("llama", c, v, MetadataJson.newObject(), MetadataJson.newObject());
    }
}
