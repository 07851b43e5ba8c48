package io.bitplane.cli;

import io.bitplane.format.BpmFile;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

/**
 * {@code bitplane demo}: the default model converted to each low-bit encoding, a short story from each, and a table
 * of bits per weight, file size, decoding speed and perplexity.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Convert the default model to each encoding, tell a story with each, compare them.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--model", description = "Source model (default: as for generate).")
    Path model;

    @Option(names = "--prompt", defaultValue = "Once upon a time", description = "Default: ${DEFAULT-VALUE}.")
    String prompt;

    @Option(names = "--steps", defaultValue = "120", description = "Tokens per story. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Option(names = "--paragraphs", defaultValue = "100", description = "Validation paragraphs for perplexity "
            + "(0 to skip). Default: ${DEFAULT-VALUE}.")
    int paragraphs;

    @Option(names = "--backend", defaultValue = "auto", description = "Kernels: auto, scalar, java, native, opencl; "
            + "or a list in order of preference (opencl,native), falling back with one line on stderr.")
    String backend;

    /** One row of the table: a name, the recipe, and what was measured. */
    private record Variant(String name, Recipe recipe) {
    }

    private static Recipe recipe(String spec, boolean int8Activations) {
        return new Recipe(QuantSpec.parse(spec), int8Activations ? io.bitplane.format.ActivationHint.INT8
                : io.bitplane.format.ActivationHint.F32, List.of());
    }

    /** Each model tells its story untimed for at least this long before the timed one (see {@link #warmUp}). */
    private static final long WARM_UP_NANOS = 1_000_000_000L;

    /**
     * Generates the story untimed until the JIT is done with it ({@link WarmUp}: at least {@link #WARM_UP_NANOS},
     * at most 5 s), so that the timed story runs in compiled kernels: the first stories of a model this small ran
     * in the JIT's first code (f32 at 258 tokens/s in its first 120 tokens, where it decodes at thousands), and
     * the table's speeds said more about the order of its rows than about the encodings. A fixed second was not
     * always enough: with -XX:UseAVX=2, W4A8's story was timed while C2 still compiled its kernel (474-3,009
     * tokens/s in the table, 14,703 once compiled).
     */
    private void warmUp(Model m) {
        WarmUp.untilSettled(WARM_UP_NANOS, WARM_UP_NANOS, nanos -> tokensPerSecond(m, nanos));
    }

    /** How long the table's speed is measured: many stories, each a few milliseconds, which one alone swung 2x. */
    private static final long TIMED_NANOS = 500_000_000L;

    /**
     * Tells the story again and again, at least once and for {@code nanos}; returns the decoding speed over them all
     * (as {@link GenerationResult#tokensPerSecond()}: the tokens after each story's first, over its decoding time).
     */
    private double tokensPerSecond(Model m, long nanos) {
        long start = System.nanoTime();
        long tokens = 0;
        long decodeNanos = 0;
        do {
            try (Session s = m.newSession()) {
                GenerationResult r = s.generate(GenerationRequest.of(prompt, steps), t -> { });
                tokens += Math.max(0, r.generatedTokens() - 1);
                decodeNanos += r.generationNanos();
            }
        } while (System.nanoTime() - start < nanos);
        return decodeNanos > 0 ? tokens * 1e9 / decodeNanos : 0;
    }

    @Override
    public Integer call() throws Exception {
        Path source = ModelLocator.locate(model);
        List<Variant> variants = List.of(new Variant("f32", recipe("f32", false)),
                new Variant("int8", recipe("int8", false)), new Variant("int4", recipe("int4", false)),
                new Variant("w4a8", recipe("int4", true)), new Variant("ternary", recipe("ternary", false)),
                new Variant("binary", recipe("binary", false)));
        Path validation = ModelLocator.validationText();
        List<String> paras = validation == null || paragraphs <= 0 ? List.of()
                : Perplexity.paragraphs(Files.readString(validation));
        paras = paras.subList(0, Math.min(paragraphs, paras.size()));
        Path dir = Files.createTempDirectory("bitplane-demo");
        List<String> rows = new ArrayList<>();
        try {
            System.out.println("Model: " + source + "; prompt: \"" + prompt + "\"; greedy, " + steps + " tokens.");
            for (Variant v : variants) {
                Path file = dir.resolve(v.name() + ".bpm");
                try (ModelSource src = ModelSources.open(source, null)) {
                    Converter.convert(src, v.recipe(), file, Converter.Progress.NONE);
                }
                double bpw;
                try (BpmFile f = BpmFile.open(file)) {
                    bpw = InspectCommand.report(f).path("totals").path("matrix_bits_per_weight").asDouble();
                }
                StringBuilder story = new StringBuilder();
                double speed;
                String ppl = "n/a";
                try (Model m = Model.open(file, ModelOptions.defaults().withBackend(backend))) {
                    try (Session s = m.newSession()) {
                        s.generate(GenerationRequest.of(prompt, steps), t -> story.append(t.text()));
                    }
                    warmUp(m);
                    speed = tokensPerSecond(m, TIMED_NANOS);
                    if (!paras.isEmpty()) {
                        ppl = String.format(Locale.ROOT, "%.3f", Perplexity.evaluate(m, paras,
                                Runtime.getRuntime().availableProcessors(), i -> { }).perplexity());
                    }
                }
                System.out.printf(Locale.ROOT, "%n== %s (%.2f bits/weight)%n%s%s%n", v.name(), bpw, prompt,
                        story.toString().replace("\n", " "));
                rows.add(String.format(Locale.ROOT, "| %-8s | %12.2f | %10.1f | %8.0f | %12s |", v.name(), bpw,
                        Files.size(file) / 1e3, speed, ppl));
            }
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
        System.out.println();
        System.out.println("| encoding | bits/weight* | file (kB) | tokens/s | PPL (" + paras.size() + " par.) |");
        System.out.println("|----------|--------------|-----------|----------|--------------|");
        rows.forEach(System.out::println);
        System.out.println("* matrices, scales included. Rounded to nearest, ternary and binary collapse a model this"
                + " small;\n  `convert --calibrate TEXT` (GPTQ, then distillation into the float model) brings them"
                + " back\n  (README, \"Quality at low bits\").");
        return 0;
    }
}
