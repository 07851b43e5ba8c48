package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.Session;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Calibration on stories260K: the statistics collected, models with substituted tensors, and GPTQ's gain. */
class CalibrationTest {
    static List<String> all;
    static final ModelOptions ONE_THREAD = ModelOptions.defaults().withThreads(1);

    @BeforeAll
    static void readText() throws Exception {
        all = Perplexity.paragraphs(Files.readString(SharedData.file("data/tinystories_validation_head.txt")));
    }

    @Test
    void hessiansAreTheInputMomentsOfEveryMatrix() throws Exception {
        List<String> paragraphs = all.subList(1000, 1020);
        Calibration c = Calibration.run(SharedData.stories260K(), ONE_THREAD, paragraphs, 2, i -> { });
        assertEquals(5 * 7 + 1, c.hessians().size(), c.hessians().keySet().toString());
        long tokens = 0;
        try (Model m = Model.open(SharedData.stories260K())) {
            for (String p : paragraphs) {
                tokens += Perplexity.tokens(m, p, 512).length - 1;
            }
        }
        assertEquals(tokens, c.tokens());
        for (var e : c.hessians().entrySet()) {
            double[] h = e.getValue();
            int n = (int) Math.sqrt(h.length);
            for (int i = 0; i < n; i++) {
                assertTrue(h[i * n + i] >= 0, e.getKey());
                for (int j = 0; j < n; j++) {
                    assertEquals(h[i * n + j], h[j * n + i], 0, e.getKey());
                    // Cauchy-Schwarz: a second-moment matrix has |H_ij| <= sqrt(H_ii H_jj).
                    assertTrue(Math.abs(h[i * n + j]) <= Math.sqrt(h[i * n + i] * h[j * n + j]) * (1 + 1e-9));
                }
            }
        }
        // q, k and v read the same input, so their statistics are the same sums in the same order.
        for (int l = 0; l < 5; l++) {
            double[] q = c.hessians().get(LlamaTensors.block(l, "attn_q"));
            assertArrayEquals(q, c.hessians().get(LlamaTensors.block(l, "attn_k")));
            assertArrayEquals(q, c.hessians().get(LlamaTensors.block(l, "attn_v")));
            assertArrayEquals(c.hessians().get(LlamaTensors.block(l, "ffn_gate")),
                    c.hessians().get(LlamaTensors.block(l, "ffn_up")));
        }
    }

    @Test
    void aSubstitutedTensorIsExactlyWhatAConvertedFileComputes(@TempDir Path dir) throws Exception {
        String name = LlamaTensors.block(2, "ffn_down");
        EncodedTensor q;
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
            SourceTensor t = src.tensors().stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
            q = Quantizer.quantize(name, t.shape(), t.floats(), QuantSpec.parse("ternary"), ActivationHint.F32);
        }
        Recipe recipe = new Recipe(null, ActivationHint.F32, List.of(new Recipe.Override(name,
                QuantSpec.parse("ternary"))));
        int[] tokens;
        float[] converted;
        try (Model m = Model.open(SharedData.stories260K(), ONE_THREAD.withRecipe(recipe))) {
            tokens = Perplexity.tokens(m, all.get(3), 512);
            converted = logits(m, tokens);
        }
        float[] substituted;
        try (Model m = ModelVariant.open(SharedData.stories260K(), ONE_THREAD, Map.of(name, q))) {
            substituted = logits(m, tokens);
        }
        float[] original;
        try (Model m = Model.open(SharedData.stories260K(), ONE_THREAD)) {
            original = logits(m, tokens);
        }
        assertArrayEquals(converted, substituted);
        assertTrue(!java.util.Arrays.equals(original, substituted), "the substitute must change the logits");
    }

    private static float[] logits(Model m, int[] tokens) {
        int vocab = m.config().vocabSize();
        float[] out = new float[(tokens.length - 1) * vocab];
        try (Session s = m.newSession()) {
            s.predict(tokens, (i, logits, off) -> System.arraycopy(logits, off, out, i * vocab, vocab));
        }
        return out;
    }

    @Test
    void sensitivityIsZeroForTheModelItselfAndGrowsWithFewerBits() throws Exception {
        Sensitivity s = Sensitivity.reference(SharedData.stories260K(), ONE_THREAD, all.subList(1000, 1010), 2);
        assertEquals(0, s.divergence(Map.of()), 0);
        String name = LlamaTensors.block(0, "attn_q");
        double int8;
        double binary;
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
            SourceTensor t = src.tensors().stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
            int8 = s.divergence(Map.of(name, Quantizer.quantize(name, t.shape(), t.floats(),
                    QuantSpec.parse("int8"), ActivationHint.F32)));
            binary = s.divergence(Map.of(name, Quantizer.quantize(name, t.shape(), t.floats(),
                    QuantSpec.parse("binary"), ActivationHint.F32)));
        }
        assertTrue(int8 > 0 && binary > 10 * int8, "int8 " + int8 + ", binary " + binary);
    }

    @Test
    void calibratedInt4BeatsRoundToNearest(@TempDir Path dir) throws Exception {
        Recipe recipe = new Recipe(QuantSpec.parse("int4"), ActivationHint.F32, List.of());
        Path rtn = dir.resolve("rtn.bpm");
        Path gptq = dir.resolve("gptq.bpm");
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
            Converter.convert(src, recipe, rtn, Converter.Progress.NONE);
            CalibratedQuantizer q = CalibratedQuantizer.prepare(SharedData.stories260K(), ONE_THREAD, src, recipe,
                    all.subList(1000, 1200), 2, CalibratedQuantizer.Options.DEFAULT, new CalibratedQuantizer.Listener() {
                        public void stage(int stage, int stages, String what) {
                        }

                        public void paragraph() {
                        }
                    });
            assertEquals(36, q.tensors().size());
            Converter.convert(src, recipe, gptq, Converter.Progress.NONE, q);
        }
        double before = perplexity(rtn);
        double after = perplexity(gptq);
        assertTrue(after < before - 0.05, "GPTQ " + after + " vs round-to-nearest " + before);
    }

    private static double perplexity(Path model) throws Exception {
        try (Model m = Model.open(model, ONE_THREAD)) {
            return Perplexity.evaluate(m, all.subList(0, 150), 2, i -> { }).perplexity();
        }
    }
}
