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

    @Option(names = "--grammar", description = "Hold the text to this GBNF grammar (llama.cpp's syntax).")
    String grammar;

    @Option(names = "--grammar-file", description = "Hold the text to the GBNF grammar in this file.")
    java.nio.file.Path grammarFile;

    @Override
    public Integer call() throws Exception {
        if (steps < 0) {
            throw new IllegalArgumentException("--steps must be >= 0");
        }
        SamplerSettings sampler = samplerArgs.settings();
        grammar();  // a bad grammar is refused before the model loads
        // UTF-8 whatever the platform's console encoding, flushed per token so that the text streams.
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        long loadStart = System.nanoTime();
        try (Model model = Model.open(modelArgs.resolvedModel(), modelArgs.options());
             Session session = model.newSession(new SessionOptions(context, 32))) {
            double loadSeconds = (System.nanoTime() - loadStart) / 1e9;
            GenerationRequest request = new GenerationRequest(prompt, steps, sampler, stop, true)
                    .withConstraint(grammar());
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

    /** The rule of --grammar or --grammar-file, or null; a grammar it cannot read is refused with its place. */
    private java.util.function.Supplier<io.bitplane.runtime.TokenConstraint> grammar() throws java.io.IOException {
        if (grammar != null && grammarFile != null) {
            throw new IllegalArgumentException("give --grammar or --grammar-file, not both");
        }
        String text = grammarFile != null ? java.nio.file.Files.readString(grammarFile) : grammar;
        if (text == null) {
            return null;
        }
        try {
            return io.bitplane.runtime.GrammarConstraint.compile(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException((grammarFile != null ? grammarFile + ": " : "--grammar: ")
                    + e.getMessage(), e);
        }
    }
}
