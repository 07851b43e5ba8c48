package io.bitplane.format.convert;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.ActivationHint;
import io.bitplane.format.Encoding;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

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
 * @param packed      whether INT4, INT4_ASYM and TERNARY matrices are written in layout 1 (packed codes, for the
 *                    native kernels) instead of bit planes
 */
public record Recipe(QuantSpec defaultSpec, ActivationHint activations, List<Override> overrides, boolean packed) {

    public Recipe(QuantSpec defaultSpec, ActivationHint activations, List<Override> overrides) {
        this(defaultSpec, activations, overrides, false);
    }

    /** {@code pattern} is a glob over tensor names: {@code *} any run of characters, {@code ?} one character. */
    public record Override(String pattern, QuantSpec spec) {
        public boolean matches(String name) {
            return globMatches(pattern, name);
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

    /**
     * The activation hint of a tensor of this shape encoded as {@code spec}: the recipe's for matrices, except that
     * binary activations go only with BINARY weights (other matrices keep float activations); F32 for vectors.
     */
    public ActivationHint activationsFor(long[] shape, QuantSpec spec) {
        if (shape.length != 2 || activations == ActivationHint.BINARY && spec.encoding() != Encoding.BINARY) {
            return ActivationHint.F32;
        }
        return activations;
    }

    public ObjectNode toJson() {
        ObjectNode o = MetadataJson.newObject();
        o.put("default", defaultSpec == null ? "auto" : defaultSpec.toString());
        o.put("activations", activations.name().toLowerCase(java.util.Locale.ROOT));
        o.put("layout", packed ? "packed" : "planes");
        var list = o.putArray("overrides");
        for (Override ov : overrides) {
            list.addObject().put("pattern", ov.pattern()).put("spec", ov.spec().toString());
        }
        return o;
    }

    /**
     * Reads a recipe file: the JSON that {@link #toJson} writes (and {@code bitplane plan --output} writes):
     * {@code {"default": "int4@32" | "auto", "activations": "f32" | "int8", "layout": "planes" | "packed",
     * "overrides": [{"pattern", "spec"}]}}.
     * Errors name the file and the field.
     */
    public static Recipe read(Path file) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        JsonNode root;
        try {
            root = MetadataJson.mapper().readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(file + ": not a JSON recipe: " + e.getOriginalMessage());
        } catch (IOException e) {  // bytes that are no Unicode text (Jackson guessed UTF-32, say)
            throw new IllegalArgumentException(file + ": not a JSON recipe: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(file + ": a recipe is a JSON object");
        }
        try {
            String def = text(root, "default", "auto");
            QuantSpec defaultSpec = def.equalsIgnoreCase("auto") ? null : QuantSpec.parse(def);
            ActivationHint hint = parseActivations(text(root, "activations", "f32"), "\"activations\"");
            boolean packed = parsePacked(text(root, "layout", "planes"), "\"layout\"");
            List<Override> overrides = new ArrayList<>();
            JsonNode list = root.path("overrides");
            if (!list.isMissingNode() && !list.isArray()) {
                throw new IllegalArgumentException("\"overrides\" must be an array");
            }
            for (int i = 0; i < list.size(); i++) {
                JsonNode o = list.get(i);
                String where = "overrides[" + i + "]";
                if (!o.path("pattern").isTextual() || !o.path("spec").isTextual()) {
                    throw new IllegalArgumentException(where + " needs text fields \"pattern\" and \"spec\"");
                }
                try {
                    overrides.add(new Override(o.get("pattern").asText(), QuantSpec.parse(o.get("spec").asText())));
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(where + ": " + e.getMessage());
                }
            }
            return new Recipe(defaultSpec, hint, overrides, packed);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(file + ": " + e.getMessage());
        }
    }

    /** f32, int8 or binary, as recipes and the command line spell activations; an error names {@code field}. */
    public static ActivationHint parseActivations(String text, String field) {
        return switch (text.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> ActivationHint.F32;
            case "int8" -> ActivationHint.INT8;
            case "binary" -> ActivationHint.BINARY;
            default -> throw new IllegalArgumentException(field + " must be f32, int8 or binary, not '" + text + "'");
        };
    }

    /** planes (false) or packed (true), as recipes and the command line spell layouts; an error names {@code field}. */
    public static boolean parsePacked(String text, String field) {
        return switch (text.toLowerCase(java.util.Locale.ROOT)) {
            case "planes" -> false;
            case "packed" -> true;
            default -> throw new IllegalArgumentException(field + " must be planes or packed, not '" + text + "'");
        };
    }

    private static String text(JsonNode root, String field, String absent) {
        JsonNode n = root.path(field);
        if (n.isMissingNode() || n.isNull()) {
            return absent;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException("\"" + field + "\" must be text");
        }
        return n.asText();
    }

    /** This recipe with {@code first} tried before its own overrides. */
    public Recipe withOverridesFirst(List<Override> first) {
        List<Override> all = new ArrayList<>(first);
        all.addAll(overrides);
        return new Recipe(defaultSpec, activations, all, packed);
    }

    /**
     * Whether {@code name} matches the glob {@code pattern} as a whole. Matched directly rather than through a
     * regular expression: a pattern of many stars (".*" each) made the regex engine backtrack for minutes on a tensor
     * name (found by RecipeFuzzTest). On a mismatch after a star, the star takes one more character and the rest is
     * tried again: at most (pattern length) x (name length) steps.
     */
    static boolean globMatches(String pattern, String name) {
        int p = 0;
        int n = 0;
        int star = -1;  // the last star seen in the pattern
        int starName = 0;  // where the name stood when that star was seen, plus what it has taken since
        while (n < name.length()) {
            char c = p < pattern.length() ? pattern.charAt(p) : 0;
            if (p < pattern.length() && c != '*' && (c == '?' || c == name.charAt(n))) {
                p++;
                n++;
            } else if (p < pattern.length() && c == '*') {
                star = p++;
                starName = n;
            } else if (star >= 0) {
                p = star + 1;
                n = ++starName;
            } else {
                return false;
            }
        }
        while (p < pattern.length() && pattern.charAt(p) == '*') {
            p++;
        }
        return p == pattern.length();
    }

    /** This recipe writing INT4, INT4_ASYM and TERNARY matrices in layout 1 (packed) or in bit planes. */
    public Recipe withPacked(boolean packed) {
        return new Recipe(defaultSpec, activations, overrides, packed);
    }

    /** The layout of a tensor of this spec: packed where asked for and the encoding has it, else canonical. */
    public int layoutFor(io.bitplane.format.Encoding encoding) {
        return packed && io.bitplane.format.PackedCodes.supports(encoding) ? io.bitplane.format.TensorSpec.LAYOUT_PACKED
                : io.bitplane.format.TensorSpec.LAYOUT_CANONICAL;
    }
}
