package io.bitplane.format.convert;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.ModelCheck;
import io.bitplane.format.SharedData;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConverterTest {
    @TempDir
    Path dir;

    static Path convert(Path src, Recipe recipe, Path out) throws Exception {
        try (ModelSource s = ModelSources.open(src, null)) {
            Converter.convert(s, recipe, out, Converter.Progress.NONE);
        }
        return out;
    }

    static Recipe uniform(String spec) {
        return new Recipe(QuantSpec.parse(spec), ActivationHint.F32, List.of());
    }

    @Test
    void f32ConversionIsBitExactWithTheSource() throws Exception {
        Path out = convert(SharedData.stories260K(), uniform("f32"), dir.resolve("f32.bpm"));
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null); BpmFile f = BpmFile.open(out)) {
            assertTrue(f.verifyChecksums().isEmpty());
            assertTrue(ModelCheck.problems(f).isEmpty(), ModelCheck.problems(f).toString());
            for (SourceTensor t : src.tensors()) {
                BpmTensor b = f.tensor(t.name());
                assertEquals(Encoding.F32, b.spec().encoding());
                assertArrayEquals(t.floats(), b.toFloats(), t.name());
            }
            assertEquals(src.metadata().vocabulary().size(), f.metadata().vocabulary().size());
        }
    }

    /** Quantize, write, convert the .bpm back to F32: the floats are exactly what the quantizer computed. */
    @ParameterizedTest
    @ValueSource(strings = {"int8@32", "int4@32", "int4-asym@64", "int4@128", "ternary", "ternary-twn", "binary",
            "f16", "bf16"})
    void eachEncodingRoundTripsBackToF32AsTheQuantizerComputed(String spec) throws Exception {
        Path q = convert(SharedData.stories260K(), uniform(spec), dir.resolve("q.bpm"));
        Path back = convert(q, uniform("f32"), dir.resolve("back.bpm"));
        try (ModelSource src = ModelSources.open(SharedData.stories260K(), null); BpmFile f = BpmFile.open(back)) {
            for (SourceTensor t : src.tensors()) {
                float[] expected = t.floats();
                if (t.shape().length == 2) {
                    EncodedTensor e = Quantizer.quantize(t.name(), t.shape(), expected, QuantSpec.parse(spec),
                            ActivationHint.F32);
                    expected = Dequantizer.toFloats(e.spec(), e.segment());
                }
                assertArrayEquals(expected, f.tensor(t.name()).toFloats(), t.name());
            }
        }
    }

    @Test
    void lowBitGgufConvertsWithoutLossAndOverridesApply() throws Exception {
        Path gguf = SharedData.file("fixtures/gguf/stories260K-q4_0.gguf");
        Recipe recipe = new Recipe(QuantSpec.parse("int4@32"), ActivationHint.INT8,
                List.of(Recipe.Override.parse("blk.*.ffn_down.weight=int8")));
        Path out = convert(gguf, recipe, dir.resolve("q4.bpm"));
        try (ModelSource src = ModelSources.open(gguf, null); BpmFile f = BpmFile.open(out)) {
            for (SourceTensor t : src.tensors()) {
                BpmTensor b = f.tensor(t.name());
                if (t.name().contains("ffn_down")) {
                    assertEquals(Encoding.INT8, b.spec().encoding());
                    assertEquals("round_to_nearest", f.metadata().quantization().path("tensors").path(t.name())
                            .path("quantizer").asText());
                } else if (t.shape().length == 2) {
                    assertArrayEquals(t.lossless().bytes(), b.copy().bytes(), "lossless " + t.name());
                    assertEquals(ActivationHint.INT8, b.spec().activations());
                    assertEquals("lossless", f.metadata().quantization().path("tensors").path(t.name())
                            .path("quantizer").asText());
                } else {
                    assertEquals(ActivationHint.F32, b.spec().activations());
                    assertArrayEquals(t.floats(), b.toFloats());
                }
            }
        }
    }

    @Test
    void autoKeepsEverySourceEncoding() throws Exception {
        Path gguf = SharedData.file("fixtures/gguf/stories260K-q8_0.gguf");
        Path out = convert(gguf, Recipe.auto(), dir.resolve("q8.bpm"));
        try (ModelSource src = ModelSources.open(gguf, null); BpmFile f = BpmFile.open(out)) {
            for (SourceTensor t : src.tensors()) {
                assertEquals(t.nativeSpec().encoding(), f.tensor(t.name()).spec().encoding());
                assertArrayEquals(t.lossless().bytes(), f.tensor(t.name()).copy().bytes());
            }
        }
    }

    @Test
    void binaryActivationsGoOnlyToBinaryMatrices() throws Exception {
        Recipe recipe = new Recipe(QuantSpec.parse("binary"), Recipe.parseActivations("binary", "--activations"),
                List.of(Recipe.Override.parse("token_embd.weight=int8")));
        Path out = convert(SharedData.stories260K(), recipe, dir.resolve("xnor.bpm"));
        try (BpmFile f = BpmFile.open(out)) {
            assertEquals(ActivationHint.BINARY, f.tensor("blk.0.attn_q.weight").spec().activations());
            assertEquals(ActivationHint.F32, f.tensor("token_embd.weight").spec().activations());
            assertEquals(ActivationHint.F32, f.tensor("output_norm.weight").spec().activations());
        }
    }

    @Test
    void globsMatchWholeNames() {
        var o = Recipe.Override.parse("blk.*.attn_?.weight=int8");
        assertTrue(o.matches("blk.12.attn_q.weight"));
        assertTrue(!o.matches("blk.1.attn_output.weight"));
        assertTrue(!o.matches("xblk.1.attn_q.weight"));
    }

    /** The matcher against the regular expression each glob stands for, over random patterns and names. */
    @Test
    void globsMatchAsTheirRegularExpressions() {
        java.util.Random rnd = new java.util.Random(5);
        String alphabet = "ab.*?";
        for (int i = 0; i < 20000; i++) {
            String pattern = random(rnd, alphabet, 8);
            String name = random(rnd, "ab.*?", 10);
            StringBuilder re = new StringBuilder();
            for (char c : pattern.toCharArray()) {
                re.append(c == '*' ? ".*" : c == '?' ? "." : java.util.regex.Pattern.quote(String.valueOf(c)));
            }
            assertEquals(name.matches(re.toString()), Recipe.globMatches(pattern, name), pattern + " ~ " + name);
        }
        assertTrue(!Recipe.globMatches("*".repeat(40) + "x", "blk.12.attn_q.weight"));  // the regex took minutes
    }

    private static String random(java.util.Random rnd, String alphabet, int maxLength) {
        StringBuilder b = new StringBuilder();
        for (int n = rnd.nextInt(maxLength + 1); n > 0; n--) {
            b.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
        }
        return b.toString();
    }
}
