package io.bitplane.format.convert;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.ActivationHint;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.quant.QuantSpec;

import java.util.List;
import java.util.regex.Pattern;

/**
 * How to encode each tensor of a model: a default spec plus overrides by tensor-name pattern (first match wins),
 * and the activation hint for the matrices. Recorded in the file's metadata.
 *
 * <p>Rules: quantized specs apply to matrices only; vectors (norm weights) keep their source's float encoding unless
 * an override gives them another float encoding. A null default ("auto") keeps every tensor in the encoding its
 * source stores it in, which for low-bit GGUF tensors means without loss.
 *
 * @param defaultSpec the spec for matrices no override matches; null = auto
 * @param activations the hint recorded on every matrix (F32, or INT8 for W8A8/W4A8)
 */
public record Recipe(QuantSpec defaultSpec, ActivationHint activations, List<Override> overrides) {

    /** {@code pattern} is a glob over tensor names: {@code *} any run of characters, {@code ?} one character. */
    public record Override(String pattern, QuantSpec spec) {
        public boolean matches(String name) {
            return glob(pattern).matcher(name).matches();
        }

        /** Parses {@code PATTERN=ENC}, the form of {@code --keep}. */
        public static Override parse(String text) {
            int eq = text.lastIndexOf('=');
            if (eq <= 0 || eq == text.length() - 1) {
                throw new IllegalArgumentException("'" + text + "' is not PATTERN=ENC (for example "
                        + "token_embd.weight=int8)");
            }
            return new Override(text.substring(0, eq), QuantSpec.parse(text.substring(eq + 1)));
        }
    }

    public Recipe {
        overrides = List.copyOf(overrides);
        if (activations == null) {
            activations = ActivationHint.F32;
        }
    }

    public static Recipe auto() {
        return new Recipe(null, ActivationHint.F32, List.of());
    }

    /** The spec for a tensor whose source stores it as {@code nativeSpec}. */
    public QuantSpec choose(String name, long[] shape, QuantSpec nativeSpec) {
        boolean matrix = shape.length == 2;
        QuantSpec floatFallback = nativeSpec.encoding().quantized ? QuantSpec.parse("f32") : nativeSpec;
        for (Override o : overrides) {
            if (o.matches(name)) {
                return matrix || !o.spec().encoding().quantized ? o.spec() : floatFallback;
            }
        }
        if (!matrix) {
            return floatFallback;
        }
        return defaultSpec == null ? nativeSpec : defaultSpec;
    }

    public ActivationHint activationsFor(long[] shape) {
        return shape.length == 2 ? activations : ActivationHint.F32;
    }

    public ObjectNode toJson() {
        ObjectNode o = MetadataJson.newObject();
        o.put("default", defaultSpec == null ? "auto" : defaultSpec.toString());
        o.put("activations", activations.name().toLowerCase(java.util.Locale.ROOT));
        var list = o.putArray("overrides");
        for (Override ov : overrides) {
            list.addObject().put("pattern", ov.pattern()).put("spec", ov.spec().toString());
        }
        return o;
    }

    static Pattern glob(String glob) {
        StringBuilder re = new StringBuilder();
        for (char c : glob.toCharArray()) {
            switch (c) {
                case '*' -> re.append(".*");
                case '?' -> re.append('.');
                default -> re.append(Pattern.quote(String.valueOf(c)));
            }
        }
        return Pattern.compile(re.toString());
    }
}
