package io.bitplane.runtime;

import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.SharedData;
import io.bitplane.format.TestTensors;
import io.bitplane.format.importer.GgufWriter;
import io.bitplane.format.importer.SafetensorsFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Qwen2 (a Llama with q, k and v biases, its q and k rows in Hugging Face's rotary order) and Qwen3 (no biases; an
 * RMSNorm of each head of q and k; heads that need not make up the model's width), from GGUF files of the qwen2 and
 * qwen3 architectures and from Hugging Face folders of those model types, decode as they are defined: against a
 * plain forward pass written here from the definition (biases and head norms before the rotation, which turns the
 * two halves of each head together, as Hugging Face's rotate_half and llama.cpp's NEOX rope do), on random weights.
 */
class QwenTest {
    @TempDir
    static Path dir;

    private static final ModelConfig QWEN2 =
            new ModelConfig(64, 96, 2, 4, 2, 512, 32, 1000000f, 1e-6f, true).withAttentionBias(true);
    /** Heads of 24: q is 96 wide in a model of 64, as Qwen3-0.6B's 16 heads of 128 in 1024. */
    private static final ModelConfig QWEN3 =
            new ModelConfig(64, 96, 2, 4, 2, 512, 32, 1000000f, 1e-6f, true).withHeadDim(24).withQkNorm(true);

    private static ModelConfig config(String arch) {
        return arch.equals("qwen2") ? QWEN2 : QWEN3;
    }

    private static final int[] TOKENS = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};

    private static Map<String, float[]> weights(ModelConfig c) {
        Random rnd = new Random(7);
        Map<String, float[]> w = new HashMap<>();
        for (LlamaTensors.Expected e : LlamaTensors.expected(c)) {
            int n = (int) Arrays.stream(e.shape()).reduce(1, (a, b) -> a * b);
            float[] v = TestTensors.gaussian(rnd, n, e.name().endsWith(".bias") ? 0.5f : 0.3f);
            if (e.name().endsWith("norm.weight")) {  // head norms vary (a head's order matters), the others are ones
                boolean head = e.name().contains("attn_q_norm") || e.name().contains("attn_k_norm");
                for (int i = 0; i < n; i++) {
                    v[i] = head ? 1 + v[i] : 1;
                }
            }
            w.put(e.name(), v);
        }
        return w;
    }

    private static Path write(String arch, ModelConfig c, Map<String, float[]> w, String name) throws Exception {
        GgufWriter g = GgufWriter.of(arch, c, 1);
        for (LlamaTensors.Expected e : LlamaTensors.expected(c)) {
            g.tensor(e.name(), e.shape(), w.get(e.name()));
        }
        Path p = dir.resolve(name);
        g.write(p);
        return p;
    }

    /** The same tensors as a Hugging Face folder: config.json of this model_type and one model.safetensors. */
    private static Path folder(String type, ModelConfig c, Map<String, float[]> w, String name) throws Exception {
        var cfg = io.bitplane.format.MetadataJson.newObject();
        cfg.put("model_type", type);
        cfg.put("hidden_size", c.dim());
        cfg.put("intermediate_size", c.hiddenDim());
        cfg.put("num_hidden_layers", c.nLayers());
        cfg.put("num_attention_heads", c.nHeads());
        cfg.put("num_key_value_heads", c.nKvHeads());
        cfg.put("head_dim", c.headSize());
        cfg.put("vocab_size", c.vocabSize());
        cfg.put("max_position_embeddings", c.contextLength());
        cfg.put("rope_theta", c.ropeTheta());
        cfg.put("rms_norm_eps", c.rmsNormEps());
        cfg.put("tie_word_embeddings", true);
        cfg.put("use_sliding_window", false);
        cfg.put("sliding_window", 4);  // named, not used: a window of 4 positions would change every logit after
        Map<String, long[]> shapes = new HashMap<>();
        LlamaTensors.expected(c).forEach(e -> shapes.put(e.name(), e.shape()));
        return SafetensorsFixture.folder(dir.resolve(name), cfg, w, shapes);
    }

    @ParameterizedTest(name = "{0} from {1} on {2}")
    @CsvSource({"qwen2, gguf, scalar", "qwen2, gguf, java", "qwen2, safetensors, scalar", "qwen2, safetensors, java",
            "qwen3, gguf, scalar", "qwen3, gguf, java", "qwen3, safetensors, scalar", "qwen3, safetensors, java"})
    void decodesAsDefined(String arch, String format, String backend) throws Exception {
        ModelConfig c = config(arch);
        Map<String, float[]> w = weights(c);
        Path model = format.equals("gguf") ? write(arch, c, w, arch + ".gguf")
                : folder(arch, c, w, arch + "-" + backend);
        float[][] want = reference(c, w);
        Logits.assertClose(want, logits(model, backend), 0.5f, 1e-4f);
        // The same tensors read as a llama file (rows taken as adjacent pairs, the biases kept): another model.
        float[][] asLlama = logits(write("llama", c, w, arch + "-as-llama.gguf"), backend);
        float worst = 0;
        for (int i = 0; i < want[5].length; i++) {
            worst = Math.max(worst, Math.abs(asLlama[5][i] - want[5][i]));
        }
        assertTrue(worst > 0.01f, "the rotary order made no difference: " + worst);
    }

    /**
     * Embeddings (Qwen3-Embedding is this architecture) pool the defined pass's final-norm states: their mean, or
     * the last one's, at unit length; in one batch and in batches of 4 (the mean across them).
     */
    @ParameterizedTest(name = "{0} on {1}")
    @CsvSource({"MEAN, scalar", "MEAN, java", "LAST, scalar", "LAST, java"})
    void embeddingsPoolTheDefinedStates(Pooling pooling, String backend) throws Exception {
        Map<String, float[]> w = weights(QWEN3);
        float[][] states = referenceStates(QWEN3, w);
        double[] want = new double[QWEN3.dim()];
        for (int pos = pooling == Pooling.MEAN ? 0 : states.length - 1; pos < states.length; pos++) {
            for (int i = 0; i < want.length; i++) {
                want[i] += states[pos][i];
            }
        }
        double norm = Math.sqrt(Arrays.stream(want).map(v -> v * v).sum());
        ModelOptions options = ModelOptions.defaults().withBackend(backend)
                .withTokenizer(SharedData.file("models/tok512.bin"));
        try (Model m = Model.open(write("qwen3", QWEN3, w, "qwen3-embed-" + backend + ".gguf"), options)) {
            for (int batch : new int[] {32, 4}) {
                try (Session s = m.newSession(new SessionOptions(0, batch))) {
                    float[] got = s.embed(TOKENS, pooling);
                    for (int i = 0; i < want.length; i++) {
                        org.junit.jupiter.api.Assertions.assertEquals(want[i] / norm, got[i], 2e-4,
                                "batch " + batch + ", element " + i);
                    }
                }
            }
        }
    }

    @Test
    void biasesOutsideQkvAndMissingBiasesAreNamed() throws Exception {
        Map<String, float[]> w = weights(QWEN2);
        GgufWriter g = GgufWriter.of("qwen2", QWEN2, 1);
        for (LlamaTensors.Expected e : LlamaTensors.expected(QWEN2)) {
            g.tensor(e.name(), e.shape(), w.get(e.name()));
        }
        Path extra = dir.resolve("extra.gguf");
        g.tensor("blk.1.attn_output.bias", new long[] {64}, new float[64]).write(extra);
        ModelOptions options = ModelOptions.defaults().withTokenizer(SharedData.file("models/tok512.bin"));
        java.io.IOException e = assertThrows(java.io.IOException.class, () -> Model.open(extra, options).close());
        assertTrue(e.getMessage().contains("extra.gguf") && e.getMessage().contains("blk.1.attn_output.bias"),
                e.getMessage());
        GgufWriter h = GgufWriter.of("qwen2", QWEN2.withAttentionBias(false), 1);
        h.tensor("blk.0.attn_q.bias", new long[] {64}, new float[64]);  // one layer's: the others are missing
        Path partial = dir.resolve("partial.gguf");
        h.write(partial);
        java.io.IOException m = assertThrows(java.io.IOException.class, () -> Model.open(partial, options).close());
        assertTrue(m.getMessage().contains("blk.0.attn_k.bias is missing"), m.getMessage());
    }

    private static float[][] logits(Path gguf, String backend) throws Exception {
        ModelOptions options = ModelOptions.defaults().withBackend(backend)
                .withTokenizer(SharedData.file("models/tok512.bin"));
        try (Model m = Model.open(gguf, options)) {
            return Logits.ofEachToken(m, TOKENS);
        }
    }

    /**
     * Qwen2's and Qwen3's forward pass, top to bottom, in the weights' own (Hugging Face) row order; one token at a
     * time.
     */
    private static float[][] reference(ModelConfig c, Map<String, float[]> w) {
        float[][] states = referenceStates(c, w);
        float[][] out = new float[states.length][];
        for (int pos = 0; pos < states.length; pos++) {
            out[pos] = matmul(w.get(LlamaTensors.TOKEN_EMBD), states[pos], c.vocabSize());
        }
        return out;
    }

    /** Each position's last hidden state after the final norm, by the same pass. */
    private static float[][] referenceStates(ModelConfig c, Map<String, float[]> w) {
        int dim = c.dim();
        int hd = c.headSize();
        int qDim = c.nHeads() * hd;
        int kvDim = c.kvDim();
        float[][] keys = new float[c.nLayers()][TOKENS.length * kvDim];
        float[][] values = new float[c.nLayers()][TOKENS.length * kvDim];
        float[][] out = new float[TOKENS.length][];
        for (int pos = 0; pos < TOKENS.length; pos++) {
            float[] x = Arrays.copyOfRange(w.get(LlamaTensors.TOKEN_EMBD), TOKENS[pos] * dim, (TOKENS[pos] + 1) * dim);
            for (int l = 0; l < c.nLayers(); l++) {
                float[] xb = rmsNorm(x, w.get(LlamaTensors.block(l, "attn_norm")), c.rmsNormEps());
                float[] q = add(matmul(w.get(LlamaTensors.block(l, "attn_q")), xb, qDim), w.get(bias(l, "attn_q")));
                float[] k = add(matmul(w.get(LlamaTensors.block(l, "attn_k")), xb, kvDim), w.get(bias(l, "attn_k")));
                float[] v = add(matmul(w.get(LlamaTensors.block(l, "attn_v")), xb, kvDim), w.get(bias(l, "attn_v")));
                if (c.qkNorm()) {
                    normHeads(q, w.get(LlamaTensors.block(l, "attn_q_norm")), hd, c.rmsNormEps());
                    normHeads(k, w.get(LlamaTensors.block(l, "attn_k_norm")), hd, c.rmsNormEps());
                }
                rotateHalves(q, pos, hd, c.ropeTheta());
                rotateHalves(k, pos, hd, c.ropeTheta());
                System.arraycopy(k, 0, keys[l], pos * kvDim, kvDim);
                System.arraycopy(v, 0, values[l], pos * kvDim, kvDim);
                float[] att = new float[qDim];
                for (int h = 0; h < c.nHeads(); h++) {
                    int kvHead = h / (c.nHeads() / c.nKvHeads());
                    double[] scores = new double[pos + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = 0; t <= pos; t++) {
                        double s = 0;
                        for (int i = 0; i < hd; i++) {
                            s += q[h * hd + i] * keys[l][t * kvDim + kvHead * hd + i];
                        }
                        scores[t] = s / Math.sqrt(hd);
                        max = Math.max(max, scores[t]);
                    }
                    double sum = 0;
                    for (int t = 0; t <= pos; t++) {
                        scores[t] = Math.exp(scores[t] - max);
                        sum += scores[t];
                    }
                    for (int t = 0; t <= pos; t++) {
                        for (int i = 0; i < hd; i++) {
                            att[h * hd + i] += (float) (scores[t] / sum) * values[l][t * kvDim + kvHead * hd + i];
                        }
                    }
                }
                x = add(x, matmul(w.get(LlamaTensors.block(l, "attn_output")), att, dim));
                xb = rmsNorm(x, w.get(LlamaTensors.block(l, "ffn_norm")), c.rmsNormEps());
                float[] gate = matmul(w.get(LlamaTensors.block(l, "ffn_gate")), xb, c.hiddenDim());
                float[] up = matmul(w.get(LlamaTensors.block(l, "ffn_up")), xb, c.hiddenDim());
                for (int i = 0; i < gate.length; i++) {
                    gate[i] = (float) (gate[i] / (1 + Math.exp(-gate[i]))) * up[i];
                }
                x = add(x, matmul(w.get(LlamaTensors.block(l, "ffn_down")), gate, dim));
            }
            out[pos] = rmsNorm(x, w.get(LlamaTensors.OUTPUT_NORM), c.rmsNormEps());
        }
        return out;
    }

    private static String bias(int layer, String kind) {
        return LlamaTensors.blockBias(layer, kind);
    }

    /** Each head of {@code v} RMS-normed with weights {@code g} (one head's). */
    private static void normHeads(float[] v, float[] g, int hd, float eps) {
        for (int h = 0; h < v.length / hd; h++) {
            float[] normed = rmsNorm(Arrays.copyOfRange(v, h * hd, (h + 1) * hd), g, eps);
            System.arraycopy(normed, 0, v, h * hd, hd);
        }
    }

    /** Pairs (j, j + hd/2) of each head turned by position x theta^(-2j/hd). */
    private static void rotateHalves(float[] v, int pos, int hd, float theta) {
        for (int h = 0; h < v.length / hd; h++) {
            for (int j = 0; j < hd / 2; j++) {
                double angle = pos * Math.pow(theta, -2.0 * j / hd);
                float a = v[h * hd + j];
                float b = v[h * hd + j + hd / 2];
                v[h * hd + j] = (float) (a * Math.cos(angle) - b * Math.sin(angle));
                v[h * hd + j + hd / 2] = (float) (a * Math.sin(angle) + b * Math.cos(angle));
            }
        }
    }

    private static float[] matmul(float[] w, float[] x, int rows) {
        float[] y = new float[rows];
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int i = 0; i < x.length; i++) {
                s += w[r * x.length + i] * x[i];
            }
            y[r] = (float) s;
        }
        return y;
    }

    private static float[] rmsNorm(float[] x, float[] g, float eps) {
        double ss = 0;
        for (float f : x) {
            ss += f * f;
        }
        float r = (float) (1 / Math.sqrt(ss / x.length + eps));
        float[] o = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = g[i] * r * x[i];
        }
        return o;
    }

    private static float[] add(float[] a, float[] b) {  // b may be null: no bias
        if (b == null) {
            return a;
        }
        float[] o = a.clone();
        for (int i = 0; i < o.length; i++) {
            o[i] += b[i];
        }
        return o;
    }
}
