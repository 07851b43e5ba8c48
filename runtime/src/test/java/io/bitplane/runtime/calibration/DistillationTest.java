package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.Session;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Distillation on stories260K: its training pass computes what the runtime computes (float and W4A8), and a short
 * run lowers the KL and does not depend on the thread count.
 */
class DistillationTest {
    static List<String> all;
    static final ModelOptions SCALAR = ModelOptions.defaults().withThreads(1).withBackend("scalar");

    @BeforeAll
    static void readText() throws Exception {
        all = Perplexity.paragraphs(Files.readString(SharedData.file("data/tinystories_validation_head.txt")));
    }

    @Test
    void theTrainingPassComputesTheRuntimesLogits() throws Exception {
        Map<String, float[]> floats = floats(SharedData.stories260K());
        try (Model m = Model.open(SharedData.stories260K(), SCALAR)) {
            TrainingWeights w = TrainingWeights.fromFloats(m.config(), floats);
            for (int p = 0; p < 3; p++) {
                assertTrue(sameLogits(m, w, all.get(p), 512), "paragraph " + p);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"int4, int8", "binary, binary"})
    void theTrainingPassComputesTheRuntimesLogitsWithRoundedActivations(String weights, String activations,
                                                                        @TempDir Path dir) throws Exception {
        Path model = dir.resolve("rounded.bpm");
        ActivationHint hint = Recipe.parseActivations(activations, "activations");
        Recipe recipe = new Recipe(QuantSpec.parse(weights), hint, List.of());
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
            Converter.convert(src, recipe, model, Converter.Progress.NONE);
        }
        Map<String, float[]> floats = floats(model);
        try (Model m = Model.open(model, SCALAR)) {
            TrainingWeights w = TrainingWeights.fromFloats(m.config(), floats);
            w.rounding = hint;
            for (int i = 0; i < w.roundedInputs.length; i++) {
                w.roundedInputs[i] = true;
            }
            // Float differences of the order of an ulp upstream can move an activation to the other side of a
            // rounding tie (or of zero), and the difference then spreads through the cache to later positions.
            // Such flips are rare, so short paragraphs almost all match exactly; a wrong pass matches none.
            int same = 0;
            for (int p = 0; p < 10; p++) {
                same += sameLogits(m, w, all.get(p), 24) ? 1 : 0;
            }
            assertTrue(same >= 8, same + " of 10 paragraphs match");
        }
    }

    /** Whether the pass's logits at every position equal the runtime's (scalar backend) within float rounding. */
    private static boolean sameLogits(Model m, TrainingWeights w, String paragraph, int maxTokens) {
        ModelConfig c = m.config();
        int[] tokens = Perplexity.tokens(m, paragraph, Math.min(maxTokens, c.contextLength()));
        TrainingPass pass = new TrainingPass(c);
        pass.forward(w, tokens);
        float[] logits = pass.logits();
        try (Session s = m.newSession()) {
            for (int t = 0; t < tokens.length - 1; t++) {
                float[] expected = s.append(tokens[t]);
                for (int i = 0; i < c.vocabSize(); i++) {
                    if (Math.abs(expected[i] - logits[t * c.vocabSize() + i]) > 1e-3f * Math.max(1, Math.abs(expected[i]))) {
                        return false;
                    }
                }
            }
        }
        return true;
    }

    @Test
    void distillingLowersTheKlAndDoesNotDependOnTheThreadCount() throws Exception {
        Recipe recipe = new Recipe(QuantSpec.parse("ternary"), ActivationHint.F32, List.of());
        Distillation.Options options = new Distillation.Options(6, 8, 0.02, true, 1, true);
        CalibratedQuantizer.Options calibration = new CalibratedQuantizer.Options(
                io.bitplane.format.quant.Gptq.Options.DEFAULT, 0.1, false, false, options);
        Map<String, EncodedTensor> first = null;
        for (int threads : new int[] {1, 2}) {
            try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
                int[] steps = {0};
                CalibratedQuantizer q = CalibratedQuantizer.prepare(SharedData.stories260K(),
                        ModelOptions.defaults().withThreads(1), src, recipe, all.subList(1000, 1024), threads,
                        calibration, new CalibratedQuantizer.Listener() {
                            public void stage(int stage, int stages, String what) {
                            }

                            public void paragraph() {
                            }

                            @Override
                            public void distillStep(int step, int steps2, double meanKl) {
                                steps[0]++;
                            }
                        });
                Distillation.Result r = q.distilled();
                assertEquals(6, steps[0]);
                assertEquals(36, r.tensors().size());
                assertEquals(11, r.norms().size());
                assertTrue(r.lastKl() < r.firstKl(), r.firstKl() + " -> " + r.lastKl());
                assertTrue(q.describe(io.bitplane.format.LlamaTensors.block(0, "attn_q"),
                        QuantSpec.parse("ternary")).contains("distilled"));
                if (first == null) {
                    first = r.tensors();
                } else {
                    for (var e : first.entrySet()) {
                        assertArrayEquals(e.getValue().bytes(), r.tensors().get(e.getKey()).bytes(), e.getKey());
                    }
                }
            }
        }
    }

    @Test
    void theHeapEstimateGrowsWithTheModelAndTheLongestParagraph() {
        ModelConfig stories = new ModelConfig(64, 172, 5, 8, 4, 512, 512, 10000f, 1e-5f, true);
        ModelConfig synth418m = new ModelConfig(2048, 5632, 8, 32, 4, 32000, 2048, 10000f, 1e-5f, false);
        long small = Distillation.heapBytes(stories, 512);
        // stories260K: 260K weights (11 floats each) and four shards of activations, about 0.25 GB in all.
        assertTrue(small > 100_000_000L && small < 400_000_000L, "stories260K: " + small);
        assertTrue(Distillation.heapBytes(stories, 100) < small);
        // The 418M-weight model needs far more than a default heap on these machines: the guard is what stops a
        // default conversion from running out of memory.
        assertTrue(Distillation.heapBytes(synth418m, 128) > 18_000_000_000L);
    }

    /** Every tensor of a model file as floats, by name. */
    private static Map<String, float[]> floats(Path model) throws Exception {
        Map<String, float[]> out = new HashMap<>();
        try (ModelSource src = ModelSources.open(model, null)) {
            for (SourceTensor t : src.tensors()) {
                out.put(t.name(), t.floats());
            }
        }
        return out;
    }
}
