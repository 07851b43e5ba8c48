package io.bitplane.format.importer;

import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A tokenizer given as its own file, told by its name: Hugging Face's tokenizer.json, SentencePiece's
 * tokenizer.model, else llama2.c's tokenizer.bin.
 */
public final class TokenizerFiles {
    private TokenizerFiles() {
    }

    public static Vocabulary read(Path file, int vocabSize) throws IOException {
        String name = file.getFileName() == null ? "" : file.getFileName().toString();
        return name.endsWith(".json") ? HfTokenizerJson.read(file, vocabSize)
                : name.endsWith(".model") ? SentencePieceModelFile.read(file, vocabSize)
                : Llama2cTokenizerFile.read(file, vocabSize);
    }

    /**
     * The tokenizer beside a Hugging Face checkpoint in {@code dir}, or null: tokenizer.model (SentencePiece, whose
     * scores the tokenizer.json of the same models lacks), else tokenizer.json.
     */
    public static Vocabulary beside(Path dir, int vocabSize) throws IOException {
        for (String name : new String[] {"tokenizer.model", "tokenizer.json"}) {
            if (java.nio.file.Files.isRegularFile(dir.resolve(name))) {
                return read(dir.resolve(name), vocabSize);
            }
        }
        return null;
    }
}
