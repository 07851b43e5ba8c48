package io.bitplane.runtime;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.GgmlType;
import io.bitplane.format.importer.GgufWriter;
import io.bitplane.format.importer.RandomGgmlBlocks;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A GGUF Llama whose matrices are ggml's k-quants, 5-bit and IQ4 types, mixed as llama.cpp's Q4_K_M and Q5_K_M files
 * mix them, decodes as the same file converted with every matrix at f32 (ggml's own dequantization) does, within what
 * the .bpm re-laying rounds (group scales to f16; Q5_1 and Q5_K to INT8): through the importer, the conversion on
 * load, groups of 16 in the kernels, and the decoder.
 */
class GgmlSubBlockModelTest {
    @TempDir
    static Path dir;

    /** Which type each matrix gets, by the suffix of its llama.cpp name. */
    private static final Map<String, GgmlType> TYPES = Map.of(
            "attn_q.weight", GgmlType.Q4_K, "attn_k.weight", GgmlType.Q3_K, "attn_v.weight", GgmlType.Q6_K,
            "attn_output.weight", GgmlType.Q2_K, "ffn_gate.weight", GgmlType.Q5_K, "ffn_up.weight", GgmlType.Q5_1,
            "ffn_down.weight", GgmlType.Q5_0, "token_embd.weight", GgmlType.IQ4_NL, "output.weight", GgmlType.IQ4_XS);

    private static Path model() throws Exception {
        Path gguf = dir.resolve("kquants.gguf");
        if (java.nio.file.Files.exists(gguf)) {
            return gguf;
        }
        // Rows of 256 and 512 values: whole k-quant super-blocks. No vocabulary: tok512.bin is given on open.
        ModelConfig c = new ModelConfig(256, 512, 2, 4, 2, 512, 64, 10000f, 1e-5f, false);
        GgufWriter w = GgufWriter.llama(c, 5);
        Random rnd = new Random(11);
        for (LlamaTensors.Expected e : LlamaTensors.expected(c)) {
            String suffix = e.name().substring(e.name().indexOf('.', e.name().startsWith("blk.") ? 4 : 0) + 1);
            GgmlType type = e.shape().length == 2 ? TYPES.get(e.name().startsWith("blk.") ? suffix : e.name()) : null;
            if (type != null) {
                long n = Arrays.stream(e.shape()).reduce(1, (a, b) -> a * b);
                w.tensor(e.name(), e.shape(), type, RandomGgmlBlocks.of(type, n, 0.25f, rnd));
            }
        }
        w.write(gguf);
        return gguf;
    }

    @ParameterizedTest
    @ValueSource(strings = {"scalar", "java"})
    void decodesAsGgmlsValuesDo(String backend) throws Exception {
        Path gguf = model();
        ModelOptions options = ModelOptions.defaults().withBackend(backend)
                .withTokenizer(SharedData.file("models/tok512.bin"));
        int[] tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376};
        float[][] relaid;
        float[][] exact;
        try (Model m = Model.open(gguf, options)) {
            relaid = Logits.ofEachToken(m, tokens);
        }
        try (Model m = Model.open(gguf, options.withRecipe(
                new Recipe(QuantSpec.parse("f32"), ActivationHint.F32, List.of())))) {
            exact = Logits.ofEachToken(m, tokens);
        }
        Logits.assertClose(exact, relaid, 1f, 0.02f);
    }
}
