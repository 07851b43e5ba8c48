package io.bitplane.format.quant;

import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;

/**
 * One symmetric encoding's rounding rule, for quantizers that choose codes themselves (GPTQ): the f16 scale of a
 * group from its values, and the nearest integer code of a value, whose weight is {@code code * scale}. The scale
 * rules are the round-to-nearest quantizers' own, so a calibrated file differs only in the codes it picked.
 */
interface GroupRule {
    short scale(String tensor, float[] w, int offset, int len);

    int code(float v, float scale);

    static GroupRule of(QuantSpec spec) {
        return switch (spec.encoding()) {
            case INT8 -> new GroupRule() {
                public short scale(String t, float[] w, int o, int n) {
                    return Int8Quantizer.scale(t, w, o, n);
                }

                public int code(float v, float s) {
                    return Int8Quantizer.code(v, s);
                }
            };
            case INT4 -> new GroupRule() {
                public short scale(String t, float[] w, int o, int n) {
                    return Int4Quantizer.symmetricScale(t, w, o, n, spec.method());
                }

                public int code(float v, float s) {
                    return Int4Quantizer.symmetricCode(v, s) - 8;
                }
            };
            case TERNARY -> new GroupRule() {
                public short scale(String t, float[] w, int o, int n) {
                    return TernaryQuantizer.scale(t, w, o, n, spec.method());
                }

                public int code(float v, float s) {
                    return TernaryQuantizer.code(v, s);
                }
            };
            case BINARY -> new GroupRule() {
                public short scale(String t, float[] w, int o, int n) {
                    return BinaryQuantizer.scale(t, w, o, n);
                }

                public int code(float v, float s) {
                    return BinaryQuantizer.code(v);
                }
            };
            default -> throw new IllegalArgumentException(spec + ": calibrated quantization takes int8, int4, "
                    + "ternary or binary");
        };
    }

    static float value(int code, short scale) {
        return code * Halfs.f16ToFloat(scale);
    }

    static boolean supports(Encoding e) {
        return e == Encoding.INT8 || e == Encoding.INT4 || e == Encoding.TERNARY || e == Encoding.BINARY;
    }
}
