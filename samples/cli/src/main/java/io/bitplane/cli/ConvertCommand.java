package io.bitplane.cli;

import io.bitplane.format.TensorSpec;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
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

    @Option(names = "--tokenizer", description = "llama2.c tokenizer.bin, where the source has no vocabulary.")
    Path tokenizer;

    @Option(names = "--output", required = true, description = "The .bpm file to write.")
    Path output;

    @Mixin
    RecipeArgs recipeArgs;

    @Override
    public Integer call() throws Exception {
        try (ModelSource source = ModelSources.open(model, tokenizer)) {
            write(source, recipeArgs.recipe(), output);
        }
        return 0;
    }

    /** Converts with a progress bar (on a terminal) and a summary line on stderr. */
    static void write(ModelSource source, Recipe recipe, Path output) throws java.io.IOException {
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
            });
            bar.stepTo(total);
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        System.err.printf(Locale.ROOT, "wrote %s: %d tensors, %.1f MB in %.1f s%n", output,
                source.tensors().size(), Files.size(output) / 1e6, seconds);
    }
}
