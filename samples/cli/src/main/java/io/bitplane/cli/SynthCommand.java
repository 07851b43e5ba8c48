package io.bitplane.cli;

import io.bitplane.format.ModelConfig;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.synth.SyntheticModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code bitplane synth}: a deterministic Llama-shaped model with random weights, written as .bpm in any encoding
 * (the default shape is the 418M-weight model of the benchmarks).
 */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a synthetic Llama-shaped model with random weights (for benchmarks).")
final class SynthCommand implements Callable<Integer> {
    @Option(names = "--output", required = true, description = "The .bpm file to write.")
    Path output;

    @Option(names = "--dim", defaultValue = "2048", description = "Default: ${DEFAULT-VALUE}.")
    int dim;

    @Option(names = "--hidden", defaultValue = "5632", description = "Default: ${DEFAULT-VALUE}.")
    int hidden;

    @Option(names = "--layers", defaultValue = "8", description = "Default: ${DEFAULT-VALUE}.")
    int layers;

    @Option(names = "--heads", defaultValue = "32", description = "Default: ${DEFAULT-VALUE}.")
    int heads;

    @Option(names = "--kv-heads", defaultValue = "4", description = "Default: ${DEFAULT-VALUE}.")
    int kvHeads;

    @Option(names = "--vocab", defaultValue = "32000", description = "Default: ${DEFAULT-VALUE}.")
    int vocab;

    @Option(names = "--context", defaultValue = "2048", description = "Default: ${DEFAULT-VALUE}.")
    int context;

    @Option(names = "--seed", defaultValue = "1", description = "Default: ${DEFAULT-VALUE}.")
    long seed;

    @Mixin
    RecipeArgs recipeArgs;

    @Override
    public Integer call() throws Exception {
        ModelConfig config = new ModelConfig(dim, hidden, layers, heads, kvHeads, vocab, context, 10000f, 1e-5f,
                true);
        try (ModelSource source = SyntheticModel.of(config, seed)) {
            ConvertCommand.write(source, recipeArgs.recipe(), output);
        }
        return 0;
    }
}
