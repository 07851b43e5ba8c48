package io.bitplane.cli;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.quant.QuantSpec;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** The quantization recipe options (a picocli mixin): convert, synth, and every command that converts on load. */
final class RecipeArgs {
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

    @Option(names = "--activations", description = "Activations of the linear layers: f32, int8 per token "
            + "(W8A8, W4A8), or binary per token (XNOR-Net, on binary matrices only; the others keep f32). "
            + "Default: the recipe's, else f32.")
    String activations;

    @Option(names = "--layout", description = "How int4, int4-asym and ternary matrices are laid out: planes "
            + "(bit planes) or packed (packed codes: the same size, much faster on the native kernels, about as fast "
            + "on the Java ones). Default: the recipe's, else planes.")
    String layout;

    @Option(names = "--recipe", description = "A recipe file (JSON, as `bitplane plan --output` writes): the "
            + "encoding of each tensor. --keep overrides it; --weights may not be given with it.")
    java.nio.file.Path recipeFile;

    Recipe recipe() throws java.io.IOException {
        List<Recipe.Override> overrides = keep.stream().map(this::override).toList();
        if (recipeFile != null) {
            if (!weights.equalsIgnoreCase("auto")) {
                throw new IllegalArgumentException("give --weights or --recipe, not both");
            }
            Recipe file = Recipe.read(recipeFile).withOverridesFirst(overrides);
            file = activations == null ? file : new Recipe(file.defaultSpec(), parseActivations(activations),
                    file.overrides(), file.packed());
            return layout == null ? file : file.withPacked(parsePacked(layout));
        }
        return new Recipe(weights.equalsIgnoreCase("auto") ? null : withGroup(weights),
                parseActivations(activations == null ? "f32" : activations), overrides,
                layout != null && parsePacked(layout));
    }

    static boolean parsePacked(String text) {
        return Recipe.parsePacked(text, "--layout");
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
        return new Recipe.Override(o.pattern(), withGroup(text.substring(text.lastIndexOf('=') + 1)));
    }

    static ActivationHint parseActivations(String text) {
        return Recipe.parseActivations(text, "--activations");
    }
}
