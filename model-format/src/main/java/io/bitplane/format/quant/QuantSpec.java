package io.bitplane.format.quant;

import io.bitplane.format.Encoding;

import java.util.Locale;

/**
 * What a quantizer should produce for one tensor: an encoding, a group size (0 = per row) and a method. Written as
 * text {@code ENC[-METHOD][@GROUP]} on the command line and in recipes: {@code int4}, {@code int4-asym@128},
 * {@code int4-rtn}, {@code ternary}, {@code ternary-twn@64}, {@code binary}, {@code int8@32}, {@code f16}.
 */
public record QuantSpec(Encoding encoding, int groupSize, Method method) {

    public enum Method {
        /** Floats: plain conversion. */
        CONVERT,
        /** Round to nearest with the group's absmax scale (INT8; INT4 without search). */
        ROUND_TO_NEAREST,
        /** INT4: round to nearest with a per-group search of the clipping range that minimises squared error. */
        CLIP_SEARCH,
        /** TERNARY: BitNet b1.58 absmean (scale = mean |w|, w / scale rounded and clipped to {-1, 0, 1}). */
        ABSMEAN,
        /** TERNARY: Ternary Weight Networks (threshold 0.7 mean |w|, scale = mean |w| above it). */
        TWN,
        /** BINARY: XNOR-Net binary weights (sign, scale = mean |w|). */
        SIGN_MEAN
    }

    public static final int DEFAULT_GROUP = 32;

    public QuantSpec {
        if (!encoding.quantized) {
            groupSize = 0;
        }
    }

    /** The spec with this group size instead, where the encoding takes one. */
    public QuantSpec withGroup(int group) {
        return new QuantSpec(encoding, encoding.quantized ? group : 0, method);
    }

    public static QuantSpec parse(String text) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        int group = -1;
        int at = t.indexOf('@');
        if (at >= 0) {
            try {
                group = Integer.parseInt(t.substring(at + 1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad group size in '" + text + "'");
            }
            if (group < 0) {
                throw new IllegalArgumentException("bad group size in '" + text + "'");
            }
            t = t.substring(0, at);
        }
        QuantSpec base = switch (t) {
            case "f32" -> new QuantSpec(Encoding.F32, 0, Method.CONVERT);
            case "f16" -> new QuantSpec(Encoding.F16, 0, Method.CONVERT);
            case "bf16" -> new QuantSpec(Encoding.BF16, 0, Method.CONVERT);
            case "int8" -> new QuantSpec(Encoding.INT8, DEFAULT_GROUP, Method.ROUND_TO_NEAREST);
            case "int4" -> new QuantSpec(Encoding.INT4, DEFAULT_GROUP, Method.CLIP_SEARCH);
            case "int4-rtn" -> new QuantSpec(Encoding.INT4, DEFAULT_GROUP, Method.ROUND_TO_NEAREST);
            case "int4-asym" -> new QuantSpec(Encoding.INT4_ASYM, DEFAULT_GROUP, Method.CLIP_SEARCH);
            case "int4-asym-rtn" -> new QuantSpec(Encoding.INT4_ASYM, DEFAULT_GROUP, Method.ROUND_TO_NEAREST);
            case "ternary" -> new QuantSpec(Encoding.TERNARY, 0, Method.ABSMEAN);
            case "ternary-twn" -> new QuantSpec(Encoding.TERNARY, 0, Method.TWN);
            case "binary" -> new QuantSpec(Encoding.BINARY, 0, Method.SIGN_MEAN);
            default -> throw new IllegalArgumentException("unknown encoding '" + text
                    + "' (one of f32 f16 bf16 int8 int4 int4-rtn int4-asym int4-asym-rtn ternary ternary-twn binary,"
                    + " optionally @GROUP)");
        };
        if (group >= 0) {
            if (!base.encoding.quantized && group != 0) {
                throw new IllegalArgumentException("'" + text + "': " + base.encoding + " takes no group size");
            }
            if ((base.encoding == Encoding.INT8 || base.encoding == Encoding.INT4
                    || base.encoding == Encoding.INT4_ASYM) && group == 0) {
                throw new IllegalArgumentException("'" + text + "': " + base.encoding + " needs a group size > 0");
            }
            base = base.withGroup(group);
        }
        return base;
    }

    /** The text form that {@link #parse} reads back to this spec. */
    @Override
    public String toString() {
        String name = switch (encoding) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
            case INT8 -> "int8";
            case INT4 -> method == Method.ROUND_TO_NEAREST ? "int4-rtn" : "int4";
            case INT4_ASYM -> method == Method.ROUND_TO_NEAREST ? "int4-asym-rtn" : "int4-asym";
            case TERNARY -> method == Method.TWN ? "ternary-twn" : "ternary";
            case BINARY -> "binary";
        };
        return encoding.quantized ? name + "@" + groupSize : name;
    }
}
