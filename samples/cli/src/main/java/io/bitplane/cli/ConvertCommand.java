package io.bitplane.cli;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.format.quant.QuantSpec;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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

    @Option(names = "--weights", defaultValue = "auto", description = "Encoding of the matrices: f32 f16 bf16 "
            + "int8 int4 ternary binary (also int4-rtn int4-asym ternary-twn, ENC@GROUP), or auto: keep each "
            + "tensor as the source stores it. Default: ${DEFAULT-VALUE}.")
    String weights;

    @Option(names = "--group", description = "Group size for the quantized encodings (default 32 for int4 and "
            + "int8, a whole row for ternary and binary).")
    Integer group;

    @Option(names = "--keep", description = "PATTERN=ENC: encode tensors whose name matches the glob PATTERN "
            + "as ENC instead (first match wins), e.g. token_embd.weight=int8.")
    List<String> keep = new ArrayList<>();

    @Option(names = "--activations", defaultValue = "f32", description = "Activations of the linear layers: f32, "
            + "or int8 per token (W8A8, W4A8). Default: ${DEFAULT-VALUE}.")
    String activations;

    @Override
    public Integer call() throws Exception {
        Recipe recipe = new Recipe(weights.equalsIgnoreCase("auto") ? null : withGroup(weights),
                parseActivations(activations), keep.stream().map(this::override).toList());
        long start = System.nanoTime();
        try (ModelSource source = ModelSources.open(model, tokenizer)) {
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
        return 0;
    }

    /** A spec from text; --group applies where the text names no group itself. */
    private QuantSpec withGroup(String text) {
        QuantSpec spec = QuantSpec.parse(text);
        if (group != null && !text.contains("@") && spec.encoding().quantized) {
            return QuantSpec.parse(text + "@" + group);
        }
        return spec;
    }

    private Recipe.Override override(String text) {
        Recipe.Override o = Recipe.Override.parse(text);
        String encText = text.substring(text.lastIndexOf('=') + 1);
        return new Recipe.Override(o.pattern(), withGroup(encText));
    }

    static ActivationHint parseActivations(String text) {
        return switch (text.toLowerCase(Locale.ROOT)) {
            case "f32" -> ActivationHint.F32;
            case "int8" -> ActivationHint.INT8;
            default -> throw new IllegalArgumentException("--activations must be f32 or int8, not '" + text + "'");
        };
    }
}
