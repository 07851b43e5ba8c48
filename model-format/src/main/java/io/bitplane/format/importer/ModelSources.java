package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Opens a model in any format Bitplane reads, recognised by its first bytes (or, for Hugging Face, its folder). */
public final class ModelSources {
    private ModelSources() {
    }

    public enum Format { BPM, GGUF, LLAMA2C_V1, LLAMA2C_LEGACY, SAFETENSORS }

    public static Format detect(Path path) throws IOException {
        if (Files.isDirectory(path) || path.toString().endsWith(".safetensors")
                || path.getFileName().toString().equals("config.json")
                || path.toString().endsWith(".safetensors.index.json")) {
            return Format.SAFETENSORS;
        }
        if (!Files.isRegularFile(path)) {
            throw new NoSuchFileException(path.toString(), null, "no such model file");
        }
        byte[] head = new byte[8];
        int n;
        try (InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, 8);
        }
        if (n >= 8 && new String(head, java.nio.charset.StandardCharsets.US_ASCII).equals("BITPLANE")) {
            return Format.BPM;
        }
        int first = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt();
        if (n >= 4 && first == GgufFile.MAGIC) {
            return Format.GGUF;
        }
        if (n >= 4 && first == Llama2cImporter.MAGIC_V1) {
            return Format.LLAMA2C_V1;
        }
        if (n < 4) {
            throw new BpmFormatException(path + ": " + n + " bytes is too short to be a model");
        }
        return Format.LLAMA2C_LEGACY;
    }

    /**
     * Opens {@code path}. {@code tokenizer} (may be null) is the vocabulary: it replaces the one a GGUF or .bpm file
     * carries (as it does when the runtime opens a model), and llama2.c and Hugging Face models take it instead of
     * the tokenizer beside them.
     */
    public static ModelSource open(Path path, Path tokenizer) throws IOException {
        return switch (detect(path)) {
            case BPM -> BpmImporter.open(path, tokenizer);
            case GGUF -> GgufImporter.open(path, tokenizer);
            case LLAMA2C_V1, LLAMA2C_LEGACY -> Llama2cImporter.open(path, tokenizer);
            case SAFETENSORS -> SafetensorsImporter.open(path, tokenizer);
        };
    }
}
