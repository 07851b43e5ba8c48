package io.bitplane.runtime;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Greedy decoding of stories260K prints exactly what llama2.c prints, from every format it comes in. */
class GoldenTest {
    @TempDir
    static Path dir;

    static String greedy(Model m, int steps) {
        try (Session s = m.newSession()) {
            StringBuilder sb = new StringBuilder();
            GenerationResult r = s.generate(GenerationRequest.of("", steps), t -> sb.append(t.text()));
            assertEquals(steps, r.generatedTokens());
            assertEquals(sb.toString(), r.text());
            return sb.toString();
        }
    }

    static Path source(String which) throws Exception {
        return switch (which) {
            case "llama2c-legacy" -> SharedData.stories260K();
            case "llama2c-v1" -> SharedData.file("models/stories260K_v1.bin");
            case "gguf-f32" -> SharedData.file("fixtures/gguf/stories260K-f32.gguf");
            case "bpm" -> {
                Path out = dir.resolve("stories260K.bpm");
                try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
                    Converter.convert(src, new Recipe(QuantSpec.parse("f32"), ActivationHint.F32, List.of()), out,
                            Converter.Progress.NONE);
                }
                yield out;
            }
            case "safetensors-untied" -> {
                // Hugging Face order and naming, with a separate classifier: exercises the untied output path.
                Path hf = dir.resolve("hf-untied");
                java.nio.file.Files.createDirectories(hf);
                try (ModelSource src = ModelSources.open(SharedData.stories260K(), null)) {
                    io.bitplane.format.importer.SafetensorsFixture.write(src, hf, false, true);
                }
                yield hf;
            }
            default -> throw new IllegalArgumentException(which);
        };
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2c-legacy", "llama2c-v1", "gguf-f32", "bpm", "safetensors-untied"})
    void greedyDecodingPrintsTheGoldenText(String which) throws Exception {
        String golden = Files.readString(SharedData.file("golden/stories260K-greedy.txt"));
        ModelOptions options = ModelOptions.defaults().withTokenizer(which.equals("llama2c-v1")
                || which.startsWith("safetensors") ? SharedData.tok512() : null);
        try (Model m = Model.open(source(which), options)) {
            assertEquals(which.equals("safetensors-untied"), !m.config().tiedEmbeddings());
            assertEquals(golden, greedy(m, 256) + "\n");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama2c-legacy"})
    void theGreedyTokenIdsBeginAsLlama2cs(String which) throws Exception {
        int[] expected = {403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338};
        try (Model m = Model.open(source(which)); Session s = m.newSession()) {
            Generation g = s.start(GenerationRequest.of("", expected.length));
            int[] ids = new int[expected.length];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = g.next().id();
            }
            assertArrayEquals(expected, ids);
        }
    }
}
