package io.bitplane.format.importer;

import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.nio.file.Path;

/** A tokenizer given as its own file: Hugging Face's tokenizer.json (by its name), else llama2.c's tokenizer.bin. */
public final class TokenizerFiles {
    private TokenizerFiles() {
    }

    public static Vocabulary read(Path file, int vocabSize) throws IOException {
        return file.getFileName() != null && file.getFileName().toString().endsWith(".json")
                ? HfTokenizerJson.read(file, vocabSize) : Llama2cTokenizerFile.read(file, vocabSize);
    }
}
