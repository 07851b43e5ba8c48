package io.bitplane.format.synth;

import io.bitplane.format.LlamaTensors;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.quant.QuantSpec;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A Llama-shaped model with random weights, for benchmarks at sizes no shared model has (the default is issue 4's
 * 418M-weight shape). Deterministic: each tensor comes from its own generator seeded by the seed and its name, so
 * tensors are produced one at a time, in any order, identically on every machine. Matrices are Gaussian with
 * standard deviation 0.02 (a common initialisation), norm weights are 1. The vocabulary is the 256 byte tokens
 * after {@code <unk> <s> </s>}, padded with placeholder pieces, so that text can be encoded and decoded.
 */
public final class SyntheticModel {
    private SyntheticModel() {
    }

    public static final ModelConfig DEFAULT_418M =
            new ModelConfig(2048, 5632, 8, 32, 4, 32000, 2048, 10000f, 1e-5f, true);

    public static ModelSource of(ModelConfig config, long seed) {
        String problem = config.problem();
        if (problem != null) {
            throw new IllegalArgumentException("synthetic model: " + problem);
        }
        if (config.vocabSize() < 259) {
            throw new IllegalArgumentException("synthetic model: the vocabulary needs at least 259 tokens (3 special"
                    + " and 256 bytes), not " + config.vocabSize());
        }
        List<SourceTensor> tensors = new ArrayList<>();
        for (LlamaTensors.Expected e : LlamaTensors.expected(config)) {
            tensors.add(new Tensor(e.name(), e.shape(), seed));
        }
        var source = MetadataJson.newObject();
        source.put("format", "synthetic");
        source.put("seed", seed);
        ModelMetadata meta = new ModelMetadata("llama", config, vocabulary(config.vocabSize()),
                MetadataJson.newObject(), source);
        List<SourceTensor> list = List.copyOf(tensors);
        return new ModelSource() {
            @Override
            public ModelMetadata metadata() {
                return meta;
            }

            @Override
            public List<SourceTensor> tensors() {
                return list;
            }

            @Override
            public void close() {
            }
        };
    }

    static Vocabulary vocabulary(int size) {
        List<byte[]> tokens = new ArrayList<>(size);
        tokens.add("<unk>".getBytes(StandardCharsets.UTF_8));
        tokens.add("<s>".getBytes(StandardCharsets.UTF_8));
        tokens.add("</s>".getBytes(StandardCharsets.UTF_8));
        for (int b = 0; b < 256; b++) {
            tokens.add(String.format("<0x%02X>", b).getBytes(StandardCharsets.UTF_8));
        }
        while (tokens.size() < size) {
            tokens.add(("<synthetic " + tokens.size() + ">").getBytes(StandardCharsets.UTF_8));
        }
        return new Vocabulary("llama", tokens, new float[size], Vocabulary.llama2cTypes(tokens), 1, 2, 16, null);
    }

    private record Tensor(String name, long[] shape, long seed) implements SourceTensor {
        @Override
        public QuantSpec nativeSpec() {
            return QuantSpec.parse("f32");
        }

        @Override
        public float[] floats() {
            int n = Math.toIntExact(TensorSpec.of(name, Encoding.F32, 0, shape).elementCount());
            float[] v = new float[n];
            if (shape.length == 1) {
                java.util.Arrays.fill(v, 1f);
                return v;
            }
            SplittableRandom rnd = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + name.hashCode());
            for (int i = 0; i < n; i++) {
                v[i] = (float) (gaussian(rnd) * 0.02);
            }
            return v;
        }

        /** Box-Muller from the generator (SplittableRandom has no nextGaussian of its own before Java 17's API). */
        private static double gaussian(SplittableRandom rnd) {
            double u = 1.0 - rnd.nextDouble();
            double w = rnd.nextDouble();
            return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
        }

        @Override
        public EncodedTensor lossless() {
            return EncodedTensor.ofFloats(TensorSpec.of(name, Encoding.F32, 0, shape), floats());
        }
    }
}
