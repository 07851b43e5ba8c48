package io.bitplane.cli;

import io.bitplane.runtime.SamplerSettings;
import picocli.CommandLine.Option;

/** The sampling options of the commands that generate text (generate, chat), as llama.cpp names them. */
final class SamplerArgs {
    @Option(names = "--temperature", defaultValue = "1.0", description = "0 is greedy. Default: ${DEFAULT-VALUE}.")
    float temperature;

    @Option(names = "--top-p", defaultValue = "0.9", description = "Nucleus sampling. Default: ${DEFAULT-VALUE}.")
    float topP;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k most likely tokens (0: all).")
    int topK;

    @Option(names = "--min-p", defaultValue = "0", description = "Drop tokens below min-p x the most likely.")
    float minP;

    @Option(names = "--repeat-penalty", defaultValue = "1.0", description = "Penalty for recent tokens (1: off).")
    float repeatPenalty;

    @Option(names = "--seed", description = "Random seed (default: from the clock); the same seed gives the "
            + "same text.")
    Long seed;

    SamplerSettings settings() {
        return new SamplerSettings(temperature, topK, topP, minP, repeatPenalty, 64,
                seed != null ? seed : System.nanoTime());
    }
}
