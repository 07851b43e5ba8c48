package io.bitplane.runtime;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The perplexity figures the runtime issue asks for, on the first 500 validation paragraphs (48,715 scored
 * tokens). Reference values from ../shared/README.md.
 */
class PerplexityTest {
    static List<String> paragraphs;

    @BeforeAll
    static void readText() throws Exception {
        paragraphs = Perplexity.paragraphs(Files.readString(SharedData.file("data/tinystories_validation_head.txt")))
                .subList(0, 500);
    }

    static Score score(Path model, Recipe recipe) throws Exception {
        try (Model m = Model.open(model, ModelOptions.defaults().withRecipe(recipe))) {
            return Perplexity.evaluate(m, paragraphs, 2, i -> { });
        }
    }

    static Recipe uniform(String spec, ActivationHint act) {
        return new Recipe(QuantSpec.parse(spec), act, List.of());
    }

    @Test
    void fp32() throws Exception {
        Score s = score(SharedData.stories260K(), null);
        assertEquals(48_715, s.scoredTokens());
        assertEquals(4.175, s.perplexity(), 0.002);
    }

    @Test
    void int8Groups32() throws Exception {
        double ppl = score(SharedData.stories260K(), uniform("int8@32", ActivationHint.F32)).perplexity();
        assertTrue(ppl <= 4.19, "INT8 g32 " + ppl);
    }

    @Test
    void int4Groups32AndW4A8() throws Exception {
        double int4 = score(SharedData.stories260K(), uniform("int4@32", ActivationHint.F32)).perplexity();
        assertTrue(int4 <= 4.85, "INT4 g32 " + int4);
        double w4a8 = score(SharedData.stories260K(), uniform("int4@32", ActivationHint.INT8)).perplexity();
        assertTrue(w4a8 <= 4.87, "W4A8 " + w4a8);
    }

    @Test
    void ggufQ8AndQ4FixturesMatchLlamaCpp() throws Exception {
        double q8 = score(SharedData.file("fixtures/gguf/stories260K-q8_0.gguf"), null).perplexity();
        assertEquals(4.178, q8, 0.01);
        double q4 = score(SharedData.file("fixtures/gguf/stories260K-q4_0.gguf"), null).perplexity();
        assertEquals(4.562, q4, 0.01);
    }

    @Test
    void ternaryAndBinaryRunAndCollapseAsPostTrainingQuantizationDoes() throws Exception {
        double ternary = score(SharedData.stories260K(), uniform("ternary", ActivationHint.F32)).perplexity();
        double binary = score(SharedData.stories260K(), uniform("binary", ActivationHint.F32)).perplexity();
        assertTrue(Double.isFinite(ternary) && ternary > 50, "ternary " + ternary);
        assertTrue(Double.isFinite(binary) && binary > ternary, "binary " + binary);
    }
}
