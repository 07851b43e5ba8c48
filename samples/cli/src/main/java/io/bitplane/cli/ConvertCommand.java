package io.bitplane.cli;

import io.bitplane.format.TensorSpec;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.runtime.calibration.CalibratedQuantizer;
import io.bitplane.runtime.calibration.Distillation;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/** {@code bitplane convert}: any supported model to a .bpm file, under a quantization recipe. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Convert a model (llama2.c, GGUF, safetensors or .bpm) to a .bpm file.")
final class ConvertCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "Source model: a file, or a Hugging Face folder.")
    Path model;

    @Option(names = "--tokenizer", description = "Tokenizer, where the source has none: llama2.c tokenizer.bin, "
            + "SentencePiece tokenizer.model or Hugging Face tokenizer.json.")
    Path tokenizer;

    @Option(names = "--output", required = true, description = "The .bpm file to write.")
    Path output;

    @Mixin
    RecipeArgs recipeArgs;

    @Option(names = "--calibrate", description = "Unlabeled text to calibrate on (paragraphs split on blank "
            + "lines): quantizes INT8, INT4, TERNARY and BINARY matrices with GPTQ instead of rounding to nearest.")
    Path calibrate;

    @Option(names = "--calibrate-paragraphs", description = "A:B, the paragraphs of the calibration text to use "
            + "(A inclusive, B exclusive, from 0). Default: all of them.")
    String calibrateParagraphs;

    @Option(names = "--calibrate-mode", defaultValue = "auto", description = "one-shot: every layer calibrated "
            + "on the unquantized model (one run); sequential: layer by layer on the quantized layers before it (a "
            + "run per layer); auto: sequential when the recipe has ternary or binary matrices. "
            + "Default: ${DEFAULT-VALUE}.")
    String calibrateMode;

    @Option(names = "--awq", description = "Scale activation-heavy input channels before GPTQ (AWQ).")
    boolean awq;

    @Option(names = "--distill-steps", description = "After GPTQ, distill the quantized model into the float one "
            + "for this many steps of 16 calibration paragraphs (label-free KL; learns codes, scales and norm "
            + "gains). 0: GPTQ only. Default: 200.")
    Integer distillSteps;

    @Option(names = "--distill-rate", description = "Distillation step size, as a fraction of each tensor's mean "
            + "scale. Default: 0.02.")
    Double distillRate;

    @Override
    public Integer call() throws Exception {
        Recipe recipe = recipeArgs.recipe();
        if (calibrate == null && (calibrateParagraphs != null || awq || !calibrateMode.equals("auto")
                || distillSteps != null || distillRate != null)) {
            throw new IllegalArgumentException("--calibrate-paragraphs, --calibrate-mode, --awq, --distill-steps "
                    + "and --distill-rate need --calibrate TEXT");
        }
        try (ModelSource source = ModelSources.open(model, tokenizer)) {
            Converter.TensorQuantizer quantizer = calibrate == null ? Converter.TensorQuantizer.ROUND_TO_NEAREST
                    : CalibrationRun.prepare(model, tokenizer, source, recipe, calibrate,
                    calibrateParagraphs == null ? ":" : calibrateParagraphs, calibrationOptions());
            write(source, recipe, output, quantizer);
        }
        return 0;
    }

    private CalibratedQuantizer.Options calibrationOptions() {
        Boolean sequential = switch (calibrateMode) {
            case "auto" -> null;
            case "one-shot" -> false;
            case "sequential" -> true;
            default -> throw new IllegalArgumentException("--calibrate-mode must be auto, one-shot or sequential, "
                    + "not '" + calibrateMode + "'");
        };
        CalibratedQuantizer.Options d = CalibratedQuantizer.Options.DEFAULT;
        Distillation.Options base = Distillation.Options.DEFAULT;
        Distillation.Options distill = new Distillation.Options(distillSteps != null ? distillSteps : base.steps(),
                base.batch(), distillRate != null ? distillRate : base.rate(), base.tuneNorms(), base.seed(),
                distillSteps != null);
        return new CalibratedQuantizer.Options(d.gptq(), d.embeddingDamping(), awq, sequential, distill);
    }

    static void write(ModelSource source, Recipe recipe, Path output) throws java.io.IOException {
        write(source, recipe, output, Converter.TensorQuantizer.ROUND_TO_NEAREST);
    }

    /** Converts with a progress bar (on a terminal) and a summary line on stderr. */
    static void write(ModelSource source, Recipe recipe, Path output, Converter.TensorQuantizer quantizer)
            throws java.io.IOException {
        long start = System.nanoTime();
        long total = source.tensors().stream().mapToLong(t -> TensorSpec.of(t.name(),
                io.bitplane.format.Encoding.F32, 0, t.shape()).elementCount()).sum();
        try (ProgressBar bar = new ProgressBarBuilder().setTaskName("convert").setInitialMax(total)
                .setStyle(ProgressBarStyle.ASCII).setUnit(" M weights", 1_000_000).showSpeed()
                .setConsumer(Progress.consumer()).build()) {
            long[] done = {0};
            Converter.convert(source, recipe, output, (i, n, spec) -> {
                bar.stepTo(done[0]);
                bar.setExtraMessage(spec.name());
                done[0] += spec.elementCount();
            }, quantizer);
            bar.stepTo(total);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.err.printf(Locale.ROOT, "wrote %s: %d tensors, %.1f MB in %.1f s%n", output,
                source.tensors().size(), Files.size(output) / 1e6, seconds);
    }
}
