package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.convert.Converter;
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

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * The converter's calibrated quantizer: GPTQ for every matrix whose recipe encoding it takes (INT8, INT4, TERNARY,
 * BINARY), round to nearest for the rest (float encodings, INT4_ASYM, lossless copies).
 *
 * <p>One-shot (the default when distillation follows, and for INT8 and INT4): every matrix's input statistics
 * come from one run of the unquantized model. Sequential (the default without distillation when the recipe has
 * TERNARY or BINARY matrices, where inputs drift far): layers are quantized in order, the inputs of layer l
 * collected from the model whose embedding and layers before l are already quantized, so each layer is fitted to
 * what its inputs have really become. That costs one calibration run per layer. Then, if asked,
 * {@link Distillation} fits the GPTQ tensors and the norms to the float model's output as a whole. All quantized
 * tensors are held in memory until the converter writes them.
 */
public final class CalibratedQuantizer implements Converter.TensorQuantizer {

    /** Hears each stage: {@code stage} of {@code stages}, and each calibrated paragraph within it. */
    public interface Listener {
        void stage(int stage, int stages, String what);

        void paragraph();

        /** A distillation step finished, with the mean KL (nats per position) of its paragraphs. */
        default void distillStep(int step, int steps, double meanKl) {
        }

        /** A line for the user about a choice made on their behalf (for example a skipped distillation). */
        default void note(String line) {
        }
    }

    private final Map<String, EncodedTensor> quantized;
    private final Map<String, float[]> changedFloats;
    private final Calibration first;
    private final List<Awq.Choice> awq;
    private final boolean sequential;
    private final Distillation.Result distilled;

    private CalibratedQuantizer(Map<String, EncodedTensor> quantized, Map<String, float[]> changedFloats,
                                Calibration first, List<Awq.Choice> awq, boolean sequential,
                                Distillation.Result distilled) {
        this.quantized = quantized;
        this.changedFloats = changedFloats;
        this.first = first;
        this.awq = awq;
        this.sequential = sequential;
        this.distilled = distilled;
    }

    /** The distillation's outcome, or null when it did not run. */
    public Distillation.Result distilled() {
        return distilled;
    }

    /** Whether the layers were quantized one after another on quantized inputs. */
    public boolean sequential() {
        return sequential;
    }

    /** One line per AWQ group: the alpha chosen and the output error before and after, for reports. */
    public List<String> awqReport() {
        return awq.stream().map(c -> String.format(Locale.ROOT, "%s alpha %.2f error %.4g -> %.4g", c.group(),
                c.alpha(), c.errorBefore(), c.errorAfter())).toList();
    }

    /**
     * @param gptq               the GPTQ settings
     * @param embeddingDamping   GPTQ damping of a tied embedding table: calibration sees only its use as the
     *                           output matrix, not its rows looked up as inputs, so its objective leans further
     *                           toward plain weight error (0.1 against the 0.01 other matrices then had gave the
     *                           best perplexity on held-out paragraphs 2000:2500 for INT4 on stories260K: 7.690
     *                           against 7.710; 0.3 gave 7.705)
     * @param awq                scale activation-heavy input channels first (AWQ), where a producer can absorb
     *                           the scale. Off by default: before GPTQ it made INT4 worse on stories260K (4.475
     *                           against 4.455), since GPTQ already compensates what the scales would protect
     * @param sequential         quantize layer by layer on inputs from the already quantized layers (one
     *                           calibration run per layer); null: only when some matrix is TERNARY or BINARY, where
     *                           it pays (stories260K binary: 1,109 one-shot, 565 sequential; INT4 no better)
     * @param distill            after GPTQ, distill the quantized model into the float one ({@link Distillation});
     *                           null or 0 steps: off
     */
    public record Options(Gptq.Options gptq, double embeddingDamping, boolean awq, Boolean sequential,
                          Distillation.Options distill) {
        public static final Options DEFAULT = new Options(Gptq.Options.DEFAULT, 0.1, false, null, null);

        boolean distilling() {
            return distill != null && distill.steps() > 0;
        }

        Gptq.Options gptqFor(String tensor) {
            return tensor.equals(LlamaTensors.TOKEN_EMBD)
                    ? new Gptq.Options(embeddingDamping, gptq.actOrder(), gptq.refinements()) : gptq;
        }
    }

    /**
     * Quantizes every matrix of {@code source} that {@code recipe} gives a GPTQ encoding, calibrating on
     * {@code paragraphs} of the model at {@code model} (the same weights as the source, unquantized).
     */
    public static CalibratedQuantizer prepare(Path model, ModelOptions modelOptions, ModelSource source,
                                              Recipe recipe, List<String> paragraphs, int threads, Options options,
                                              Listener listener) throws IOException, InterruptedException {
        if (ModelSources.detect(model) == ModelSources.Format.BPM) {
            return prepareOn(model, modelOptions, source, recipe, paragraphs, threads, options, listener);
        }
        // Every calibration run opens the model: convert the source once, not on every load.
        Path copy = ModelVariant.unquantizedCopy(source);
        try {
            return prepareOn(copy, modelOptions, source, recipe, paragraphs, threads, options, listener);
        } finally {
            Files.deleteIfExists(copy);
        }
    }

    private static CalibratedQuantizer prepareOn(Path model, ModelOptions modelOptions, ModelSource source,
                                                 Recipe recipe, List<String> paragraphs, int threads,
                                                 Options options, Listener listener)
            throws IOException, InterruptedException {
        Map<String, SourceTensor> all = new LinkedHashMap<>();
        Map<String, SourceTensor> targets = new LinkedHashMap<>();
        boolean lowBit = false;
        for (SourceTensor t : source.tensors()) {
            all.put(t.name(), t);
            QuantSpec spec = recipe.choose(t.name(), t.shape(), t.nativeSpec());
            if (t.shape().length == 2 && Gptq.supports(spec) && !Converter.isLossless(t.nativeSpec(), spec)) {
                targets.put(t.name(), t);
                lowBit |= spec.encoding() == Encoding.TERNARY || spec.encoding() == Encoding.BINARY;
            }
        }
        // Distillation refits every layer on the quantized model's own inputs, which is what sequential GPTQ is
        // for, so it starts from one-shot GPTQ unless asked otherwise.
        boolean sequential = options.sequential() != null ? options.sequential() : lowBit && !options.distilling();
        List<List<String>> stages = stages(targets.keySet());
        int runs = sequential ? stages.size() + (targets.containsKey(LlamaTensors.TOKEN_EMBD) ? 1 : 0) : 1;
        listener.stage(0, runs, "all layers");
        Calibration first = Calibration.run(model, modelOptions, Map.of(), targets::containsKey, paragraphs, threads,
                p -> listener.paragraph());
        Map<String, double[]> hessians = new HashMap<>(first.hessians());

        // Floats changed before quantization (AWQ-scaled matrices, norms and producer rows that absorb the scales).
        Map<String, float[]> changed = new HashMap<>();
        List<Awq.Choice> choices = options.awq() ? applyAwq(all, targets, recipe, hessians, changed) : List.of();

        Map<String, EncodedTensor> done = new HashMap<>();
        for (int i = 0; i < stages.size(); i++) {
            List<String> stage = new ArrayList<>(stages.get(i));
            Map<String, double[]> h = hessians;
            if (sequential && stage.remove(LlamaTensors.TOKEN_EMBD)) {
                // The embedding first (from the first run), so that layer 0 calibrates on what it really gets.
                quantize(LlamaTensors.TOKEN_EMBD, targets, recipe, changed, hessians, options, done);
            }
            if (sequential && !done.isEmpty() && !stage.isEmpty()) {
                listener.stage(i, runs, String.join(", ", stage));
                Map<String, EncodedTensor> current = new HashMap<>();
                changed.forEach((name, v) -> current.put(name, asF32(name, all.get(name).shape(), v)));
                current.putAll(done);
                // Layers after this stage (and the output matrix, whose statistics came from the first run) need
                // not be computed: their inputs are not wanted here.
                int layer = stage.stream().mapToInt(CalibratedQuantizer::layerOf).max().orElse(-1);
                Predicate<String> later = n -> layer >= 0 && (layerOf(n) > layer
                        || n.equals(LlamaTensors.TOKEN_EMBD) || n.equals(LlamaTensors.OUTPUT));
                h = Calibration.run(model, modelOptions, current, Set.copyOf(stage)::contains, later,
                        paragraphs, threads, p -> listener.paragraph()).hessians();
            }
            for (String name : stage) {
                quantize(name, targets, recipe, changed, h, options, done);
            }
        }
        Distillation.Result distilled = null;
        if (options.distilling()) {
            distilled = distill(model, modelOptions, all, recipe, changed, done, paragraphs, threads, options.distill(),
                    listener);
            if (distilled != null) {
                done.putAll(distilled.tensors());
                changed.putAll(distilled.norms());
            }
        }
        // Producers that absorbed AWQ scales but are not quantized here (norms) are written as changed floats.
        Map<String, float[]> floatsOnly = new HashMap<>(changed);
        floatsOnly.keySet().removeAll(done.keySet());
        return new CalibratedQuantizer(done, floatsOnly, first, choices, sequential, distilled);
    }

    /**
     * Distills the GPTQ tensors {@code done} (and the norms) into the float model: the teacher is every tensor's
     * floats (after AWQ, if any), the fixed matrices are what the converter will write for them. Null when the heap
     * is too small and distillation was not required (the listener hears why).
     */
    private static Distillation.Result distill(Path model, ModelOptions modelOptions, Map<String, SourceTensor> all,
                                               Recipe recipe, Map<String, float[]> changed,
                                               Map<String, EncodedTensor> done, List<String> paragraphs,
                                               int threads, Distillation.Options options, Listener listener)
            throws IOException, InterruptedException {
        ModelConfig config;
        List<int[]> sequences = new ArrayList<>();
        try (Model m = Model.open(model, modelOptions)) {
            config = m.config();
            for (String p : paragraphs) {
                sequences.add(Perplexity.tokens(m, p, config.contextLength()));
            }
        }
        if (config.attentionBias() || config.qkNorm() || config.queryDim() != config.dim()) {
            // the training pass has no biases, head norms or heads of their own size: it would fit another model
            String why = "distillation does not model attention biases (Qwen2) or Qwen3's heads yet";
            if (options.required()) {
                throw new IllegalArgumentException(why + ": use --distill-steps 0 for GPTQ alone");
            }
            listener.note("bitplane: " + why + ", so this conversion uses GPTQ alone");
            return null;
        }
        int longest = sequences.stream().mapToInt(s -> s.length).max().orElse(1);
        long need = Distillation.heapBytes(config, longest);
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (need > free) {
            String why = "distillation of this model needs about " + megabytes(need) + " of heap and "
                    + megabytes(free) + " are free";
            if (options.required()) {
                throw new IllegalArgumentException(why + ": give the JVM more (-Xmx, BITPLANE_JVM_OPTS), or use "
                        + "--distill-steps 0 for GPTQ alone");
            }
            listener.note("bitplane: " + why + ", so this conversion uses GPTQ alone (--distill-steps 0 says so "
                    + "explicitly)");
            return null;
        }
        Map<String, float[]> floats = new HashMap<>();
        Map<String, EncodedTensor> fixed = new HashMap<>();
        Map<String, QuantSpec> specs = new HashMap<>();
        for (SourceTensor t : all.values()) {
            float[] v = floats(changed, t);
            floats.put(t.name(), v);
            QuantSpec spec = recipe.choose(t.name(), t.shape(), t.nativeSpec());
            specs.put(t.name(), spec);
            if (t.shape().length == 2 && !done.containsKey(t.name())
                    && !Converter.isLossless(t.nativeSpec(), spec)) {
                fixed.put(t.name(), Quantizer.quantize(t.name(), t.shape(), v, spec,
                        recipe.activationsFor(t.shape(), spec)));
            }
        }
        return new Distillation(config, floats, fixed, done, specs, recipe.activations(), options)
                .run(sequences, threads,
                listener::distillStep);
    }

    private static String megabytes(long bytes) {
        return String.format(java.util.Locale.ROOT, "%,d MB", Math.max(0, bytes) / 1_000_000);
    }

    /**
     * GPTQ of every matrix {@code recipe} gives a GPTQ encoding, each from {@code calibration}'s statistics of the
     * unquantized model (no AWQ, not sequential): each result depends on its own tensor and spec only, so a planner
     * can mix them freely.
     */
    public static Map<String, EncodedTensor> oneShot(Calibration calibration, ModelSource source, Recipe recipe,
                                                     Options options) throws IOException {
        Map<String, EncodedTensor> out = new LinkedHashMap<>();
        for (SourceTensor t : source.tensors()) {
            QuantSpec spec = recipe.choose(t.name(), t.shape(), t.nativeSpec());
            double[] h = calibration.hessians().get(t.name());
            if (t.shape().length == 2 && h != null && Gptq.supports(spec)
                    && !Converter.isLossless(t.nativeSpec(), spec)) {
                out.put(t.name(), Gptq.quantize(t.name(), t.shape(), t.floats(), h, spec,
                        recipe.activationsFor(t.shape(), spec), options.gptqFor(t.name())));
            }
        }
        return out;
    }

    /**
     * AWQ over each layer's three input-sharing groups whose matrices are all GPTQ targets: scales the matrices,
     * folds the inverse into the producer, records every changed tensor in {@code changed} and rescales the
     * matrices' Hessians.
     */
    private static List<Awq.Choice> applyAwq(Map<String, SourceTensor> all, Map<String, SourceTensor> targets,
                                             Recipe recipe, Map<String, double[]> hessians,
                                             Map<String, float[]> changed) throws IOException {
        List<Awq.Choice> choices = new ArrayList<>();
        for (int l = 0; all.containsKey(LlamaTensors.block(l, "attn_norm")); l++) {
            for (List<String> group : Awq.groups()) {
                List<String> kinds = group.subList(0, group.size() - 1);
                String producer = LlamaTensors.block(l, group.get(group.size() - 1));
                List<Awq.Matrix> matrices = new ArrayList<>();
                for (String kind : kinds) {
                    SourceTensor t = targets.get(LlamaTensors.block(l, kind));
                    if (t != null && hessians.containsKey(t.name()) && all.containsKey(producer)) {
                        matrices.add(new Awq.Matrix(t.name(), floats(changed, t), t.shape(),
                                recipe.choose(t.name(), t.shape(), t.nativeSpec()),
                                recipe.activationsFor(t.shape(), recipe.choose(t.name(), t.shape(), t.nativeSpec()))));
                    }
                }
                if (matrices.size() != kinds.size()) {
                    continue;
                }
                float[] prod = floats(changed, all.get(producer));
                Awq.Choice c = Awq.scaleGroup("blk." + l + "." + String.join("+", kinds), matrices,
                        hessians.get(matrices.get(0).name()), prod, all.get(producer).shape().length == 2, hessians);
                choices.add(c);
                if (c.alpha() > 0) {
                    matrices.forEach(m -> changed.put(m.name(), m.values()));
                    changed.put(producer, prod);
                }
            }
        }
        return choices;
    }

    /** GPTQ of one target (its floats after AWQ, if any) into {@code done}. */
    private static void quantize(String name, Map<String, SourceTensor> targets, Recipe recipe,
                                 Map<String, float[]> changed, Map<String, double[]> hessians, Options options,
                                 Map<String, EncodedTensor> done) throws IOException {
        SourceTensor t = targets.get(name);
        QuantSpec spec = recipe.choose(name, t.shape(), t.nativeSpec());
        ActivationHint act = recipe.activationsFor(t.shape(), spec);
        float[] v = floats(changed, t);
        double[] h = hessians.get(name);
        done.put(name, h == null ? Quantizer.quantize(name, t.shape(), v, spec, act)
                : Gptq.quantize(name, t.shape(), v, h, spec, act, options.gptqFor(name)));
    }

    private static float[] floats(Map<String, float[]> changed, SourceTensor t) throws IOException {
        float[] v = changed.get(t.name());
        return v != null ? v : t.floats();
    }

    private static EncodedTensor asF32(String name, long[] shape, float[] values) {
        return EncodedTensor.ofFloats(TensorSpec.of(name, Encoding.F32, 0, shape), values);
    }

    /**
     * The order of quantization: the embedding with layer 0 (its use as a tied output matrix is calibrated on the
     * unquantized model), then each layer, then an untied output matrix and anything else.
     */
    static List<List<String>> stages(Set<String> names) {
        Map<Integer, List<String>> byLayer = new java.util.TreeMap<>();
        List<String> last = new ArrayList<>();
        for (String n : names) {
            int layer = LlamaTensors.TOKEN_EMBD.equals(n) ? 0 : layerOf(n);
            if (layer < 0) {
                last.add(n);
            } else {
                byLayer.computeIfAbsent(layer, k -> new ArrayList<>()).add(n);
            }
        }
        List<List<String>> out = new ArrayList<>(byLayer.values());
        if (!last.isEmpty()) {
            out.add(last);
        }
        return out;
    }

    private static int layerOf(String name) {
        if (!name.startsWith("blk.")) {
            return -1;
        }
        int dot = name.indexOf('.', 4);
        try {
            return dot < 0 ? -1 : Integer.parseInt(name.substring(4, dot));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** The first calibration run, on the unquantized model. */
    public Calibration firstRun() {
        return first;
    }

    /** The quantized tensors by name. */
    public Map<String, EncodedTensor> tensors() {
        return quantized;
    }

    @Override
    public boolean replaces(String name) {
        return quantized.containsKey(name) || changedFloats.containsKey(name);
    }

    @Override
    public EncodedTensor quantize(String name, long[] shape, float[] values, QuantSpec spec,
                                  ActivationHint activations) {
        float[] changed = changedFloats.get(name);
        if (changed != null) {
            return Quantizer.quantize(name, shape, changed, spec, activations);
        }
        EncodedTensor q = quantized.get(name);
        if (q != null && q.spec().encoding() == spec.encoding() && q.spec().groupSize() == spec.groupSize()) {
            return q;
        }
        return Quantizer.quantize(name, shape, values, spec, activations);
    }

    @Override
    public String describe(String name, QuantSpec spec) {
        String method = spec.method().name().toLowerCase(Locale.ROOT);
        if (changedFloats.containsKey(name)) {
            return "awq-folded";
        }
        if (!quantized.containsKey(name)) {
            return method;
        }
        return (sequential ? "gptq-sequential+" : "gptq+") + (distilled != null ? "distilled+" : "") + method;
    }
}
