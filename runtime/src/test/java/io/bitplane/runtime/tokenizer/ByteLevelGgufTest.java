package io.bitplane.runtime.tokenizer;

import io.bitplane.format.ModelConfig;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.GgufWriter;
import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelException;
import io.bitplane.runtime.Session;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A GGUF model whose tokenizer is byte-level BPE (tokenizer.ggml.model "gpt2", as llama.cpp writes Llama 3's),
 * through the importer, the .bpm metadata it is converted to on load, and the runtime: a synthetic Llama of random
 * weights with the vocabulary ByteLevelBpeTest trains.
 */
class ByteLevelGgufTest {
    @TempDir
    Path dir;

    private static GgufWriter model(Vocabulary v) {
        return GgufWriter.llama(new ModelConfig(16, 32, 1, 2, 2, v.size(), 64, 500000f, 1e-5f, true), 3)
                .put("tokenizer.ggml.model", v.model())
                .put("tokenizer.ggml.pre", v.preTokenizer())
                .put("tokenizer.ggml.tokens",
                        v.tokens().stream().map(t -> new String(t, StandardCharsets.UTF_8)).toList())
                .put("tokenizer.ggml.token_type", Arrays.stream(v.tokenTypes()).boxed().toList())
                .put("tokenizer.ggml.merges", v.merges())
                .put("tokenizer.ggml.bos_token_id", v.bosId())
                .put("tokenizer.ggml.eos_token_id", v.eosId());
    }

    @Test
    void aLlama3StyleGgufEncodesAndGenerates() throws Exception {
        Vocabulary v = ByteLevelBpeTest.trained(200, "llama-bpe");
        Path gguf = dir.resolve("bpe.gguf");
        model(v).write(gguf);
        try (Model m = Model.open(gguf)) {  // converted to .bpm on load: the vocabulary went through its metadata
            Tokenizer t = m.tokenizer();
            assertInstanceOf(ByteLevelBpe.class, t);
            String text = "Once upon a time, Lily's ball flew 1234 feet!" + ByteLevelBpeTest.EOT;
            int[] want = new ByteLevelBpe(v).encode(text, true, false);
            assertEquals(v.bosId(), want[0]);  // llama.cpp adds BOS for Llama 3's pre-tokenizer when the key is absent
            assertArrayEquals(want, t.encode(text, true, false));
            try (Session s = m.newSession()) {
                GenerationResult r = s.generate(GenerationRequest.of("Once upon a time", 12), x -> { });
                assertTrue(r.promptTokens() > 1 && r.generatedTokens() > 0, r.toString());
            }
        }
    }

    /** Where tokenizer.ggml.add_bos_token is absent, BOS is added for Llama 3's pre-tokenizer by any of its names. */
    @Test
    void bosIsAddedByDefaultForLlama3sPreTokenizerOnly() throws Exception {
        Vocabulary v = ByteLevelBpeTest.trained(50, "llama-bpe");
        for (String pre : List.of("llama-bpe", "llama3", "llama-v3", "gpt-2", "qwen2")) {
            Path gguf = dir.resolve(pre + ".gguf");
            model(v).put("tokenizer.ggml.pre", pre).write(gguf);
            try (var s = io.bitplane.format.importer.ModelSources.open(gguf, null)) {
                assertEquals(Vocabulary.LLAMA3_PRE_TOKENIZERS.contains(pre), s.metadata().vocabulary().addBos(), pre);
            }
        }
    }

    /** Rope scaling reaches the decoder: factors of one decode as none do, bit for bit; other factors do not. */
    @Test
    void ropeFrequencyFactorsReachTheDecoder() throws Exception {
        Vocabulary v = ByteLevelBpeTest.trained(100, "llama-bpe");
        String text = "Once upon a time, Lily's ball flew over the park. Tom and Sam didn't want to go home.";
        double[] nll = new double[3];
        float[][] factors = {null, GgufWriter.filled(4, 1f), {1f, 2f, 8f, 8f}};  // head size 8: four pairs
        for (int i = 0; i < 3; i++) {
            Path gguf = dir.resolve("rope" + i + ".gguf");
            GgufWriter w = model(v);
            if (factors[i] != null) {
                w.tensor("rope_freqs.weight", new long[] {4}, factors[i]);
            }
            w.write(gguf);
            try (Model m = Model.open(gguf); Session s = m.newSession()) {
                assertArrayEquals(factors[i], m.config().ropeFreqFactors());
                nll[i] = s.score(text).negativeLogLikelihood();
            }
        }
        assertEquals(nll[0], nll[1]);
        assertTrue(Math.abs(nll[2] - nll[0]) > 1e-6, nll[2] + " against " + nll[0]);
    }

    @Test
    void unsupportedPreTokenizersAndBadMergesAreNamed() throws Exception {
        Vocabulary v = ByteLevelBpeTest.trained(50, "llama-bpe");
        Path falcon = dir.resolve("falcon.gguf");
        model(v).put("tokenizer.ggml.pre", "falcon").write(falcon);
        ModelException e = assertThrows(ModelException.class, () -> Model.open(falcon).close());
        assertTrue(e.getMessage().contains("falcon.gguf") && e.getMessage().contains("pre-tokenizer 'falcon'"),
                e.getMessage());

        Path badMerge = dir.resolve("merge.gguf");
        model(v).put("tokenizer.ggml.merges", List.of("nospace")).write(badMerge);
        Exception b = assertThrows(Exception.class, () -> Model.open(badMerge).close());
        assertTrue(b.getMessage().contains("merge.gguf") && b.getMessage().contains("merge 0 'nospace'"),
                b.getMessage());
    }
}
