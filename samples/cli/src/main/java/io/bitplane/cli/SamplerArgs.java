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

    @Option(names = "--repeat-last-n", defaultValue = "64", description = "Tokens the penalties look back on (-1: "
            + "the whole context). Default: ${DEFAULT-VALUE}.")
    int repeatLastN;

    @Option(names = "--frequency-penalty", defaultValue = "0", description = "Lower a recent token's logit by this "
            + "times its count (0: off).")
    float frequencyPenalty;

    @Option(names = "--presence-penalty", defaultValue = "0", description = "Lower each recent token's logit by "
            + "this (0: off).")
    float presencePenalty;

    @Option(names = "--seed", description = "Random seed (default: from the clock); the same seed gives the "
            + "same text.")
    Long seed;

    SamplerSettings settings() {
        return new SamplerSettings(temperature, topK, topP, minP, repeatPenalty,
                repeatLastN == -1 ? Integer.MAX_VALUE : repeatLastN, seed != null ? seed : System.nanoTime())
                .withPenalties(frequencyPenalty, presencePenalty);
    }
}
