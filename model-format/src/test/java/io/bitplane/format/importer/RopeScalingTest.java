package io.bitplane.format.importer;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Rope scaling from GGUF and Hugging Face configs into the .bpm config, and the header flag that guards it. */
class RopeScalingTest {
    @TempDir
    Path dir;

    /** A tiny Llama: head size 8, so four rotary frequencies. */
    static final ModelConfig TINY = new ModelConfig(16, 32, 1, 2, 2, 40, 64, 10000f, 1e-5f, true);

    @Test
    void llama3ScalingKeepsHighFrequenciesDividesLowOnesAndBlendsBetween() throws Exception {
        // Llama 3.1 8B: head 128, theta 500000, factor 8, low 1, high 4, original context 8192. By hand: wavelength
        // 2 pi 500000^(i/64) is under 8192 / 4 for i <= 28 and over 8192 / 1 for i >= 35
        ModelConfig c = new ModelConfig(4096, 14336, 32, 32, 8, 128256, 131072, 500000f, 1e-5f, false);
        ObjectNode s = MetadataJson.newObject().put("rope_type", "llama3").put("factor", 8.0)
                .put("low_freq_factor", 1.0).put("high_freq_factor", 4.0)
                .put("original_max_position_embeddings", 8192);
        float[] f = RopeScaling.factors(Path.of("config.json"), s, c);
        assertEquals(64, f.length);
        for (int i = 0; i < 64; i++) {
            if (i <= 28) {
                assertEquals(1f, f[i], "pair " + i);
            } else if (i >= 35) {
                assertEquals(8f, f[i], "pair " + i);
            } else {
                assertTrue(f[i] > 1 && f[i] < 8 && f[i] > f[i - 1], "pair " + i + ": " + f[i]);
            }
        }
        // linear: one factor for all; other kinds are named
        assertArrayEquals(GgufWriter.filled(4, 2f), RopeScaling.factors(Path.of("c.json"),
                MetadataJson.newObject().put("type", "linear").put("factor", 2.0), TINY));
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> RopeScaling.factors(Path.of("c.json"),
                MetadataJson.newObject().put("rope_type", "yarn").put("factor", 4.0), TINY));
        assertEquals("c.json: rope_scaling type 'yarn' is not supported yet (llama3 and linear are)", e.getMessage());
    }

    @Test
    void ggufRopeFreqsReachTheBpmConfigBehindAHeaderFlag() throws Exception {
        Path gguf = dir.resolve("m.gguf");
        float[] factors = {1f, 1.5f, 4f, 8f};
        GgufWriter.llama(TINY, 1).tensor("rope_freqs.weight", new long[] {4}, factors).write(gguf);
        Path bpm = dir.resolve("m.bpm");
        try (ModelSource s = ModelSources.open(gguf, null)) {
            assertArrayEquals(factors, s.metadata().config().ropeFreqFactors());
            Converter.convert(s, new Recipe(QuantSpec.parse("f32"), null, List.of()), bpm, Converter.Progress.NONE);
        }
        try (BpmFile f = BpmFile.open(bpm)) {
            assertEquals(TINY.withRopeFreqFactors(factors), f.metadata().config());
        }
        // The flag is what stops an older reader, which knows no factors, from decoding with plain frequencies
        byte[] file = Files.readAllBytes(bpm);
        assertEquals(1, file[12]);
        file[12] = 0;  // flag cleared (header CRC resealed): the metadata's factors must not be ignored
        io.bitplane.format.BpmHeaderChecksum.recompute(file);
        Files.write(bpm, file);
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> BpmFile.open(bpm).close());
        assertTrue(e.getMessage().contains("header flags 0x0 disagree with the metadata"), e.getMessage());
        // without scaling, no flag and no factors
        Path plain = dir.resolve("plain.gguf");
        GgufWriter.llama(TINY, 1).write(plain);
        try (ModelSource s = ModelSources.open(plain, null)) {
            assertNull(s.metadata().config().ropeFreqFactors());
        }
    }

    @Test
    void ggufScalingKindsAndShapesAreCheckedByName() throws Exception {
        Path linear = dir.resolve("linear.gguf");
        GgufWriter.llama(TINY, 1).put("llama.rope.scaling.type", "linear").put("llama.rope.scaling.factor", 4f)
                .write(linear);
        try (ModelSource s = ModelSources.open(linear, null)) {
            assertArrayEquals(GgufWriter.filled(4, 4f), s.metadata().config().ropeFreqFactors());
        }
        Path yarn = dir.resolve("yarn.gguf");
        GgufWriter.llama(TINY, 1).put("llama.rope.scaling.type", "yarn").write(yarn);
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> ModelSources.open(yarn, null));
        assertTrue(e.getMessage().contains("yarn.gguf: llama.rope.scaling.type 'yarn' is not supported"),
                e.getMessage());
        Path wrong = dir.resolve("wrong.gguf");
        GgufWriter.llama(TINY, 1).tensor("rope_freqs.weight", new long[] {8}, GgufWriter.filled(8, 1f)).write(wrong);
        e = assertThrows(BpmFormatException.class, () -> ModelSources.open(wrong, null));
        assertTrue(e.getMessage().contains("wrong.gguf: tensor rope_freqs.weight must be F32 of 4 values"),
                e.getMessage());
        Path zero = dir.resolve("zero.gguf");
        GgufWriter.llama(TINY, 1).tensor("rope_freqs.weight", new long[] {4}, new float[] {1, 0, 1, 1}).write(zero);
        e = assertThrows(BpmFormatException.class, () -> ModelSources.open(zero, null));
        assertTrue(e.getMessage().contains("zero.gguf: rope scaling: rope frequency factor 0.0"), e.getMessage());
    }

    @Test
    void safetensorsRopeScalingBecomesFactors() throws Exception {
        Path hf = SafetensorsFixture.stories(dir.resolve("hf"));
        Path config = hf.resolve("config.json");
        ObjectNode c = (ObjectNode) MetadataJson.mapper().readTree(config.toFile());
        c.putObject("rope_scaling").put("rope_type", "linear").put("factor", 2.0);
        Files.write(config, MetadataJson.mapper().writeValueAsBytes(c));
        try (ModelSource s = ModelSources.open(hf, io.bitplane.format.SharedData.tok512())) {
            assertArrayEquals(GgufWriter.filled(4, 2f), s.metadata().config().ropeFreqFactors());
        }
        c.putObject("rope_scaling").put("rope_type", "dynamic").put("factor", 2.0);
        Files.write(config, MetadataJson.mapper().writeValueAsBytes(c));
        BpmFormatException e = assertThrows(BpmFormatException.class,
                () -> ModelSources.open(hf, io.bitplane.format.SharedData.tok512()));
        assertTrue(e.getMessage().contains("rope_scaling type 'dynamic'"), e.getMessage());
    }
}
