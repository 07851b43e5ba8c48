package io.bitplane.cli;

import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.SamplerSettings;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code bitplane generate}: text on stdout as it is produced; speed, latency and memory on stderr. */
@Command(name = "generate", mixinStandardHelpOptions = true, description = "Generate text from a prompt.")
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--prompt", defaultValue = "", description = "Text to continue (default: none).")
    String prompt;

    @Option(names = "--steps", defaultValue = "256", description = "Most new tokens. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Mixin
    SamplerArgs samplerArgs;

    @Option(names = "--stop", description = "Stop when this string appears (repeatable).")
    List<String> stop = new ArrayList<>();

    @Option(names = "--context", defaultValue = "0", description = "KV cache positions (0: the model's).")
    int context;

    @Override
    public Integer call() throws Exception {
        if (steps < 0) {
            throw new IllegalArgumentException("--steps must be >= 0");
        }
        SamplerSettings sampler = samplerArgs.settings();
        // UTF-8 whatever the platform's console encoding, flushed per token so that the text streams.
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        long loadStart = System.nanoTime();
        try (Model model = Model.open(modelArgs.resolvedModel(), modelArgs.options());
             Session session = model.newSession(new SessionOptions(context, 32))) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            GenerationRequest request = new GenerationRequest(prompt, steps, sampler, stop, true);
            out.print(prompt);
            GenerationResult r = session.generate(request, t -> {
                out.print(t.text());
                out.flush();
            });
            out.println();
            out.flush();
            System.err.printf(Locale.ROOT, "%d prompt tokens, %d generated (%s), %.1f tokens/s, time to first "
                            + "token %.1f ms, load %.2f s%n", r.promptTokens(), r.generatedTokens(),
                    r.finishReason().name().toLowerCase(Locale.ROOT), r.tokensPerSecond(), r.promptNanos() / 1e6,
                    loadSeconds);
            System.err.printf(Locale.ROOT, "memory: resident %s (model file %s mapped, KV cache and scratch %s); "
                            + "backend %s%n", MemoryReport.mb(MemoryReport.residentBytes()),
                    MemoryReport.mb(model.fileBytes()), MemoryReport.mb(session.allocatedBytes()),
                    model.backendName());
        }
        return 0;
    }
}
