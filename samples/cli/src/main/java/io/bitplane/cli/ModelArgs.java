package io.bitplane.cli;

import io.bitplane.runtime.ModelOptions;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The options every command that runs a model shares (a picocli mixin). */
final class ModelArgs {
    @Option(names = "--model", description = "Model file (.bpm, llama2.c, GGUF) or Hugging Face folder. "
            + "Default: BITPLANE_MODEL, else models/stories260K.bin, else ../shared/models/stories260K.bin.")
    Path model;

    @Option(names = "--tokenizer", description = "Tokenizer, where the model carries none: llama2.c tokenizer.bin, "
            + "SentencePiece tokenizer.model or Hugging Face tokenizer.json.")
    Path tokenizer;

    @Option(names = "--backend", defaultValue = "auto", description = "Kernels: auto, scalar, java, native, opencl; "
            + "or a list in order of preference (opencl,native), falling back with one line on stderr.")
    String backend;

    /** For models that are not .bpm: how to encode them while converting on load. */
    @Mixin
    RecipeArgs recipeArgs;

    @Option(names = "--threads", description = "Kernel threads (default: the available processors).")
    Integer threads;

    @Option(names = "--device", description = "Device number for --backend opencl (`bitplane devices` lists them; "
            + "default 0).")
    Integer device;

    Path resolvedModel() throws java.nio.file.NoSuchFileException {
        return ModelLocator.locate(model);
    }

    ModelOptions options() throws java.io.IOException {
        if (threads != null && threads < 1) {
            throw new IllegalArgumentException("--threads must be >= 1, not " + threads);
        }
        DeviceOption.apply(device);
        ModelOptions o = ModelOptions.defaults().withBackend(backend).withTokenizer(tokenizer)
                .withThreads(threads == null ? 0 : threads);
        return o.withRecipe(recipeArgs.recipe());
    }
}
