package io.bitplane.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.importer.SourceTensor;
import io.bitplane.format.quant.Gptq;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.calibration.CalibratedQuantizer;
import io.bitplane.runtime.calibration.Calibration;
import io.bitplane.runtime.calibration.ModelVariant;
import io.bitplane.runtime.calibration.Planner;
import io.bitplane.runtime.calibration.Sensitivity;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code bitplane plan}: measures each matrix's sensitivity to each encoding (KL divergence from the unquantized
 * model, that matrix alone quantized with GPTQ), chooses the encoding per matrix that minimises the summed
 * sensitivity under a size budget, measures the perplexity of the frontier of such plans and of every uniform
 * encoding, and writes the chosen recipe for {@code convert --recipe}.
 */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Choose an encoding per matrix under a size budget (mixed precision), from measured "
                + "sensitivities; print and chart the size/perplexity frontier; write the recipe.")
final class PlanCommand implements Callable<Integer> {

    @Option(names = "--model", description = "Source model (unquantized). Default: as for generate.")
    Path model;

    @Option(names = "--tokenizer", description = "Tokenizer, where the model carries none: llama2.c tokenizer.bin, "
            + "SentencePiece tokenizer.model or Hugging Face tokenizer.json.")
    Path tokenizer;

    @Option(names = "--calibrate", required = true, description = "Unlabeled calibration text (paragraphs split "
            + "on blank lines).")
    Path calibrate;

    @Option(names = "--calibrate-paragraphs", defaultValue = ":", description = "A:B, the calibration "
            + "paragraphs. Default: all.")
    String calibrateParagraphs;

    @Option(names = "--sensitivity-paragraphs", defaultValue = "64", description = "How many of the calibration "
            + "paragraphs (the first ones) sensitivities are measured on. Default: ${DEFAULT-VALUE}.")
    int sensitivityParagraphs;

    @Option(names = "--budget", description = "Average bits per weight of the matrices (codes and scales).")
    Double budget;

    @Option(names = "--budget-bytes", description = "Total bytes of the matrices (codes and scales).")
    Long budgetBytes;

    @Option(names = "--encodings", split = ",", defaultValue = "binary,ternary,int4,int8,f16",
            description = "The encodings each matrix may take (ENC[@GROUP], comma-separated). "
                    + "Default: ${DEFAULT-VALUE}.")
    List<String> encodings;

    @Option(names = "--activations", defaultValue = "f32", description = "Activations of the linear layers in "
            + "the recipe: f32, int8, or binary (binary matrices only). Default: ${DEFAULT-VALUE}.")
    String activations;

    @Option(names = "--output", required = true, description = "The recipe (JSON) to write.")
    Path output;

    @Option(names = "--evaluate", description = "Text to measure perplexity on (default: the TinyStories "
            + "validation head beside the project).")
    Path evaluate;

    @Option(names = "--evaluate-paragraphs", defaultValue = "0:500", description = "A:B of the evaluation "
            + "text. Default: ${DEFAULT-VALUE}.")
    String evaluateParagraphs;

    @Option(names = "--frontier-points", defaultValue = "12", description = "Budgets tried between the smallest "
            + "and largest size for the frontier. Default: ${DEFAULT-VALUE}.")
    int frontierPoints;

    @Option(names = "--chart", description = "Where to write the frontier chart (SVG). Default: the recipe's "
            + "name with .svg.")
    Path chart;

    @Option(names = "--json", description = "Also write the frontier table as JSON beside the recipe.")
    boolean json;

    /** A row of the frontier table. */
    record Point(String label, double bitsPerWeight, long bytes, double predicted, double measured,
                 boolean uniform, boolean chosen) {
    }

    @Override
    public Integer call() throws Exception {
        if ((budget == null) == (budgetBytes == null)) {
            throw new IllegalArgumentException("give exactly one of --budget BITS_PER_WEIGHT and --budget-bytes N");
        }
        if (sensitivityParagraphs < 1 || frontierPoints < 2) {
            throw new IllegalArgumentException("--sensitivity-paragraphs must be >= 1 and --frontier-points >= 2");
        }
        List<QuantSpec> specs = new ArrayList<>();
        for (String e : encodings) {
            QuantSpec spec = QuantSpec.parse(e);
            if (spec.encoding().quantized && !Gptq.supports(spec)) {
                throw new IllegalArgumentException("--encodings: " + e + " has no calibrated quantizer (use int8, "
                        + "int4, ternary, binary or a float encoding)");
            }
            specs.add(spec);
        }
        Path evalText = evaluate != null ? evaluate : ModelLocator.validationText();
        if (evalText == null) {
            throw new IllegalArgumentException("no --evaluate text given and the default validation text was not "
                    + "found");
        }
        List<String> calibration = CalibrationRun.paragraphs(calibrate, calibrateParagraphs,
                "--calibrate-paragraphs");
        List<String> evaluation = CalibrationRun.paragraphs(evalText, evaluateParagraphs, "--evaluate-paragraphs");
        Path source = ModelLocator.locate(model);
        // Fail now, not after minutes of measuring, when the outputs cannot be written.
        for (Path out : new Path[] {output, chart}) {
            Path dir = out == null ? null : out.toAbsolutePath().getParent();
            if (dir != null && !Files.isDirectory(dir)) {
                throw new IllegalArgumentException(out + ": the folder " + dir + " does not exist");
            }
        }
        int threads = Runtime.getRuntime().availableProcessors();
        ModelOptions options = ModelOptions.defaults().withThreads(1);
        long start = System.nanoTime();
        Path temp = null;
        try (ModelSource src = ModelSources.open(source, tokenizer)) {
            // Every measurement opens the model again: convert it once (unquantized) rather than on every load.
            temp = ModelVariant.unquantizedCopy(src);
            Recipe base = new Recipe(null, RecipeArgs.parseActivations(activations), List.of());
            Calibration cal;
            try (ProgressBar bar = bar("calibrate", calibration.size(), " paragraphs")) {
                cal = Calibration.run(temp, options, calibration, threads, i -> bar.step());
            }
            List<SourceTensor> matrices = src.tensors().stream()
                    .filter(t -> t.shape().length == 2 && cal.hessians().containsKey(t.name())).toList();
            // Each matrix under each encoding, quantized as convert --calibrate would (one-shot GPTQ).
            List<Map<String, EncodedTensor>> variants = new ArrayList<>();
            for (QuantSpec spec : specs) {
                Recipe r = new Recipe(spec, base.activations(), List.of());
                variants.add(spec.encoding().quantized ? CalibratedQuantizer.oneShot(cal, src, r,
                        CalibratedQuantizer.Options.DEFAULT)
                        : floats(matrices, spec, r));
            }
            Sensitivity sens = Sensitivity.reference(temp, options,
                    calibration.subList(0, Math.min(sensitivityParagraphs, calibration.size())), threads);
            List<Planner.Item> items = sensitivities(matrices, specs, variants, sens);
            long totalWeights = items.stream().mapToLong(Planner.Item::weights).sum();
            long budgetBits = budget != null ? (long) Math.floor(budget * totalWeights) : budgetBytes * 8;
            Planner.Plan planned = Planner.plan(items, budgetBits);
            if (planned == null) {
                throw new IllegalArgumentException(String.format(Locale.ROOT, "the budget (%.3f bits per weight) "
                        + "is below the smallest plan the encodings allow", (double) budgetBits / totalWeights));
            }
            Planner.Plan chosen = choose(planned, items, budgetBits, variants, sens);
            Measurer m = new Measurer(temp, options, evaluation, threads,
                    measure(temp, options, Map.of(), evaluation, threads), items, variants);
            double referencePpl = m.referencePpl();
            List<Point> points = new ArrayList<>();
            List<Planner.Plan> frontier = Planner.frontier(items, frontierPoints);
            try (ProgressBar bar = bar("measure", frontier.size() + specs.size() + 1, " models")) {
                for (Planner.Plan p : frontier) {
                    points.add(m.point("plan", p, false));
                    bar.step();
                }
                for (int s = 0; s < specs.size(); s++) {
                    points.add(m.point("uniform " + specs.get(s), uniform(s, items), true));
                    bar.step();
                }
                points.add(m.point("chosen", chosen, false));
                bar.step();
            }
            Point best = points.get(points.size() - 1);
            Recipe recipe = recipeOf(chosen, items, base);
            ObjectNode root = recipe.toJson();
            ObjectNode info = root.putObject("plan");
            info.put("model", source.toString());
            info.put("calibrate", calibrate + " " + calibrateParagraphs);
            info.put("budget_bits_per_weight", (double) budgetBits / totalWeights);
            info.put("bits_per_weight", best.bitsPerWeight());
            info.put("bytes", best.bytes());
            info.put("predicted_perplexity", best.predicted());
            info.put("measured_perplexity", best.measured());
            info.put("evaluated_on", evalText + " " + evaluateParagraphs);
            info.put("measured_with", "one-shot GPTQ per matrix; convert --recipe --calibrate quantizes recipes "
                    + "with ternary or binary matrices layer by layer, which measured better");
            Files.writeString(output, root.toPrettyString() + "\n");
            Path chartPath = chart != null ? chart : sibling(output, ".svg");
            Files.writeString(chartPath, PlanChart.svg(points, referencePpl, source.getFileName() + ", evaluated on "
                    + evalText.getFileName() + " " + evaluateParagraphs));
            if (json) {
                Files.writeString(sibling(output, ".frontier.json"), table(points, items, sens).toPrettyString()
                        + "\n");
            }
            print(points, referencePpl, chosen, items, sens);
            System.err.printf(Locale.ROOT, "wrote %s and %s in %.0f s%n", output, chartPath,
                    (System.nanoTime() - start) / 1e9);
        } finally {
            if (temp != null) {
                Files.deleteIfExists(temp);
            }
        }
        return 0;
    }

    /**
     * The summed sensitivities are a first-order model: damage from several layers compounds, so the plan with the
     * least predicted damage is not always the best. The candidates (the planned mix, the plans for slightly
     * smaller budgets, and every uniform encoding within the budget) are measured whole, by their KL divergence on
     * the sensitivity paragraphs (calibration text, never the evaluation text), and the least wins.
     */
    private Planner.Plan choose(Planner.Plan planned, List<Planner.Item> items, long budgetBits,
                                List<Map<String, EncodedTensor>> variants, Sensitivity sens)
            throws IOException, InterruptedException {
        List<Planner.Plan> candidates = new ArrayList<>(List.of(planned));
        for (double f : new double[] {0.97, 0.94, 0.90}) {
            Planner.Plan p = Planner.plan(items, (long) (budgetBits * f));
            if (p != null) {
                candidates.add(p);
            }
        }
        for (int s = 0; s < variants.size(); s++) {
            Planner.Plan u = uniform(s, items);
            if (u.bits() <= budgetBits) {
                candidates.add(u);
            }
        }
        Planner.Plan best = null;
        double bestKl = Double.POSITIVE_INFINITY;
        List<int[]> seen = new ArrayList<>();
        for (Planner.Plan p : candidates) {
            if (seen.stream().anyMatch(c -> java.util.Arrays.equals(c, p.choice()))) {
                continue;
            }
            seen.add(p.choice());
            double kl = sens.divergence(substitutes(p, items, variants));
            System.err.printf(Locale.ROOT, "candidate %.4f bits per weight: KL predicted %.5f, measured %.5f%n",
                    p.bitsPerWeight(items), p.cost(), kl);
            if (kl < bestKl) {
                bestKl = kl;
                best = p;
            }
        }
        System.err.printf(Locale.ROOT, "chose among %d candidate plans by their measured KL on the calibration "
                + "paragraphs: %.5f (predicted %.5f for the planned mix)%n", seen.size(), bestKl, planned.cost());
        return best;
    }

    private static Map<String, EncodedTensor> substitutes(Planner.Plan p, List<Planner.Item> items,
                                                          List<Map<String, EncodedTensor>> variants) {
        Map<String, EncodedTensor> subs = new LinkedHashMap<>();
        for (int i = 0; i < items.size(); i++) {
            subs.put(items.get(i).tensor(), variants.get(p.choice()[i]).get(items.get(i).tensor()));
        }
        return subs;
    }

    private static Map<String, EncodedTensor> floats(List<SourceTensor> matrices, QuantSpec spec, Recipe r)
            throws IOException {
        Map<String, EncodedTensor> out = new LinkedHashMap<>();
        for (SourceTensor t : matrices) {
            out.put(t.name(), Quantizer.quantize(t.name(), t.shape(), t.floats(), spec,
                    r.activationsFor(t.shape(), spec)));
        }
        return out;
    }

    /** Every matrix in encoding {@code s}. */
    private static Planner.Plan uniform(int s, List<Planner.Item> items) {
        long bits = 0;
        double cost = 0;
        int[] choice = new int[items.size()];
        java.util.Arrays.fill(choice, s);
        for (Planner.Item item : items) {
            bits += item.options().get(s).bits();
            cost += item.options().get(s).cost();
        }
        return new Planner.Plan(choice, bits, cost);
    }

    /** Measures plans: the model with exactly the plan's tensors, perplexity on the evaluation paragraphs. */
    private record Measurer(Path model, ModelOptions options, List<String> evaluation, int threads,
                            double referencePpl, List<Planner.Item> items, List<Map<String, EncodedTensor>> variants) {
        Point point(String label, Planner.Plan p, boolean uniform) throws IOException, InterruptedException {
            double measured = measure(model, options, substitutes(p, items, variants), evaluation, threads);
            return new Point(label, p.bitsPerWeight(items), (p.bits() + 7) / 8, referencePpl * Math.exp(p.cost()),
                    measured, uniform, label.equals("chosen"));
        }
    }

    /** Each matrix's KL divergence under each encoding, that matrix alone quantized. */
    private static List<Planner.Item> sensitivities(List<SourceTensor> matrices, List<QuantSpec> specs,
                                                    List<Map<String, EncodedTensor>> variants, Sensitivity sens)
            throws IOException, InterruptedException {
        List<Planner.Item> items = new ArrayList<>();
        try (ProgressBar bar = bar("sensitivity", (long) matrices.size() * specs.size(), " layers")) {
            for (SourceTensor t : matrices) {
                List<Planner.Option> opts = new ArrayList<>();
                for (int s = 0; s < specs.size(); s++) {
                    EncodedTensor q = variants.get(s).get(t.name());
                    bar.setExtraMessage(t.name() + " " + specs.get(s));
                    double kl = sens.divergence(Map.of(t.name(), q));
                    opts.add(new Planner.Option(specs.get(s).toString(), q.spec().byteLength() * 8, kl));
                    bar.step();
                }
                items.add(new Planner.Item(t.name(), t.shape()[0] * t.shape()[1], opts));
            }
        }
        return items;
    }

    private static double measure(Path model, ModelOptions options, Map<String, EncodedTensor> substitutes,
                                  List<String> paragraphs, int threads) throws IOException, InterruptedException {
        try (Model m = ModelVariant.open(model, options, substitutes)) {
            return Perplexity.evaluate(m, paragraphs, threads, i -> { }).perplexity();
        }
    }

    private static Recipe recipeOf(Planner.Plan p, List<Planner.Item> items, Recipe base) {
        List<Recipe.Override> overrides = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            overrides.add(new Recipe.Override(items.get(i).tensor(),
                    QuantSpec.parse(items.get(i).options().get(p.choice()[i]).label())));
        }
        return new Recipe(null, base.activations(), overrides);
    }

    private static Path sibling(Path file, String suffix) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return file.resolveSibling((dot > 0 ? name.substring(0, dot) : name) + suffix);
    }

    private static ProgressBar bar(String task, long max, String unit) {
        return new ProgressBarBuilder().setTaskName(task).setInitialMax(max).setStyle(ProgressBarStyle.ASCII)
                .setUnit(unit, 1).setConsumer(Progress.consumer()).build();
    }

    private ObjectNode table(List<Point> points, List<Planner.Item> items, Sensitivity sens) {
        ObjectNode o = MetadataJson.newObject();
        o.put("sensitivity_positions", sens.positions());
        ArrayNode rows = o.putArray("points");
        for (Point p : points) {
            rows.addObject().put("label", p.label()).put("bits_per_weight", p.bitsPerWeight()).put("bytes", p.bytes())
                    .put("predicted_perplexity", p.predicted()).put("measured_perplexity", p.measured());
        }
        ObjectNode kl = o.putObject("sensitivity_kl");
        for (Planner.Item it : items) {
            ObjectNode t = kl.putObject(it.tensor());
            it.options().forEach(opt -> t.put(opt.label(), opt.cost()));
        }
        return o;
    }

    private static void print(List<Point> points, double referencePpl, Planner.Plan chosen, List<Planner.Item> items,
                              Sensitivity sens) {
        System.out.printf(Locale.ROOT, "unquantized perplexity %.4f; sensitivities over %d positions%n",
                referencePpl, sens.positions());
        System.out.printf(Locale.ROOT, "%-22s %8s %10s %10s %10s%n", "", "bits/w", "bytes", "predicted", "measured");
        for (Point p : points) {
            System.out.printf(Locale.ROOT, "%-22s %8.4f %10d %10.3f %10.3f%n", p.label(), p.bitsPerWeight(), p.bytes(),
                    p.predicted(), p.measured());
        }
        System.out.println("chosen encodings:");
        for (int i = 0; i < items.size(); i++) {
            Planner.Option o = items.get(i).options().get(chosen.choice()[i]);
            System.out.printf(Locale.ROOT, "  %-28s %-12s KL %.5f%n", items.get(i).tensor(), o.label(), o.cost());
        }
    }
}
