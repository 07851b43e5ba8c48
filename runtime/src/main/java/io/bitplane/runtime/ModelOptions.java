package io.bitplane.runtime;

import io.bitplane.format.convert.Recipe;

import java.nio.file.Path;

/**
 * How to open a model.
 *
 * @param backend         "auto" (the best available), "scalar", "java", or a plug-in backend's name; or several,
 *                        comma-separated, in order of preference ("opencl,native": the next one runs where one
 *                        cannot start or cannot hold the model)
 * @param tokenizer       a llama2.c tokenizer.bin, for model files that carry no vocabulary (may be null)
 * @param recipe          for models that are not .bpm: how to encode them while converting on load
 *                        (null: keep each tensor as the source stores it)
 * @param verifyChecksums check every tensor's CRC32C at load (reads the whole file once)
 * @param threads         kernel threads (0: the available processors)
 */
public record ModelOptions(String backend, Path tokenizer, Recipe recipe, boolean verifyChecksums, int threads) {

    public ModelOptions {
        if (threads < 0) {
            throw new IllegalArgumentException("threads must be >= 0, not " + threads);
        }
    }

    public static ModelOptions defaults() {
        return new ModelOptions("auto", null, null, false, 0);
    }

    public ModelOptions withThreads(int n) {
        return new ModelOptions(backend, tokenizer, recipe, verifyChecksums, n);
    }

    public ModelOptions withBackend(String name) {
        return new ModelOptions(name, tokenizer, recipe, verifyChecksums, threads);
    }

    public ModelOptions withTokenizer(Path path) {
        return new ModelOptions(backend, path, recipe, verifyChecksums, threads);
    }

    public ModelOptions withRecipe(Recipe r) {
        return new ModelOptions(backend, tokenizer, r, verifyChecksums, threads);
    }

    public ModelOptions withVerifyChecksums(boolean verify) {
        return new ModelOptions(backend, tokenizer, recipe, verify, threads);
    }
}
