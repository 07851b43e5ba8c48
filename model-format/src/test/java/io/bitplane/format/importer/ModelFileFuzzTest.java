package io.bitplane.format.importer;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmHeaderChecksum;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.ModelCheck;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Whatever bytes a model file holds, opening it and reading every tensor either works or fails with a {@link
 * BpmFormatException} that names the file (or the checkpoint's folder): never another exception, a crash or a hang.
 * {@code ./mvnw test} runs the inputs under src/test/resources (ModelFileFuzzTestInputs); {@code JAZZER_FUZZ=1
 * ./mvnw -pl model-format test -Dtest=ModelFileFuzzTest#safetensorsFile} fuzzes one target for its maxDuration
 * (README, "Tests"). Seeds for local runs go in .cifuzz-corpus (not in git: real model files are not ours to ship).
 */
class ModelFileFuzzTest {
    private static final Path DIR;

    static {
        try {
            DIR = Files.createTempDirectory("bitplane-fuzz");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A file recognised by its first bytes: .bpm, GGUF, or llama2.c (either header). */
    @FuzzTest(maxDuration = "4m")
    void anyModelFile(byte[] bytes) throws IOException {
        open(DIR.resolve("model.bin"), bytes);
    }

    /** A Hugging Face checkpoint's model.safetensors beside a fixed config.json (a Llama of dim 8, one layer). */
    @FuzzTest(maxDuration = "4m")
    void safetensorsFile(byte[] bytes) throws IOException {
        Path dir = DIR.resolve("hf");
        if (!Files.isDirectory(dir)) {
            Files.createDirectories(dir);
            Files.writeString(dir.resolve("config.json"), """
                    {"model_type": "llama", "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 8,
                     "max_position_embeddings": 16, "rms_norm_eps": 1e-05, "tie_word_embeddings": true}""");
        }
        open(dir.resolve("model.safetensors"), bytes);
    }

    /**
     * A GGUF file's header alone (metadata, tensor infos, the tensors' places in the file): many more inputs a second
     * than {@link #anyModelFile}, which dequantizes every tensor of each.
     */
    @FuzzTest(maxDuration = "4m")
    void ggufHeader(byte[] bytes) throws IOException {
        Path p = DIR.resolve("header.gguf");
        Files.write(p, bytes);
        formatErrorsOnly(p, () -> {
            try (GgufFile f = GgufFile.open(p)) {
                f.metadata();
                for (GgufFile.TensorInfo t : f.tensors().values()) {
                    if (t.type() != null) {
                        f.data(t);
                    }
                }
            }
        });
    }

    /**
     * A .bpm file whose header checksum is recomputed before it is opened, so that the directory, the metadata and
     * the offsets are parsed however the fuzzer changed them; the tensors' own checksums then name any damage.
     */
    @FuzzTest(maxDuration = "4m")
    void bpmFileResealed(byte[] bytes) throws IOException {
        byte[] b = bytes.clone();
        BpmHeaderChecksum.recompute(b);
        Path p = DIR.resolve("resealed.bpm");
        open(p, b);
        formatErrorsOnly(p, () -> {
            try (BpmFile f = BpmFile.open(p)) {
                f.verifyChecksums();
                ModelCheck.problems(f);
            }
        });
    }

    /** A llama2.c tokenizer.bin for a vocabulary of 1 to 600 tokens (the first two bytes say how many). */
    @FuzzTest(maxDuration = "4m")
    void tokenizerFile(byte[] bytes) throws IOException {
        if (bytes.length < 2) {
            return;
        }
        Path p = DIR.resolve("tokenizer.bin");
        Files.write(p, java.util.Arrays.copyOfRange(bytes, 2, bytes.length));
        int vocabSize = 1 + ((bytes[0] & 0xFF) << 8 | bytes[1] & 0xFF) % 600;
        formatErrorsOnly(p, () -> Llama2cTokenizerFile.read(p, vocabSize));
    }

    /** A Hugging Face tokenizer.json for a model of 512 embeddings (tokenizer_config.json absent). */
    @FuzzTest(maxDuration = "4m")
    void tokenizerJson(byte[] bytes) throws IOException {
        Path p = DIR.resolve("tokenizer.json");
        Files.write(p, bytes);
        formatErrorsOnly(p, () -> HfTokenizerJson.read(p, 512));
    }

    /** A SentencePiece tokenizer.model for a model of 64 embeddings (tokenizer_config.json absent). */
    @FuzzTest(maxDuration = "4m")
    void sentencePieceModel(byte[] bytes) throws IOException {
        Path p = DIR.resolve("tokenizer.model");
        Files.write(p, bytes);
        formatErrorsOnly(p, () -> SentencePieceModelFile.read(p, 64));
    }

    /** Writes {@code bytes} to {@code p} and reads the model in it; an error may name p's folder (a checkpoint's). */
    private static void open(Path p, byte[] bytes) throws IOException {
        Files.write(p, bytes);
        formatErrorsOnly(p.getParent(), () -> {
            try (ModelSource s = ModelSources.open(p, null)) {
                s.metadata();
                for (SourceTensor t : s.tensors()) {
                    t.floats();
                    t.lossless();
                }
            }
        });
    }

    /** Reading a file, for {@link #formatErrorsOnly}. */
    private interface Reading {
        void run() throws IOException;
    }

    /** Runs {@code reading}: it may fail only with a BpmFormatException whose message starts with {@code named}. */
    private static void formatErrorsOnly(Path named, Reading reading) throws IOException {
        try {
            reading.run();
        } catch (BpmFormatException expected) {
            assertTrue(expected.getMessage().startsWith(named.toString()), expected.getMessage());
        }
    }
}
