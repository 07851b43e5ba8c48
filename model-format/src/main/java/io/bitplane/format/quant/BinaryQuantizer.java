package io.bitplane.format.quant;

import io.bitplane.format.Halfs;

/** BINARY per group (per row by default): XNOR-Net's binary-weight network, {@code w = sign(w) mean|w|}. */
final class BinaryQuantizer {
    private BinaryQuantizer() {
    }

    static short group(String name, float[] w, int offset, int len, int col0, Quantizer.PlaneRow out) {
        for (int i = 0; i < len; i++) {
            if (code(w[offset + i]) < 0) {
                out.set(0, col0 + i);
            }
        }
        return scale(name, w, offset, len);
    }

    /** The f16 scale of a group: mean |w|. */
    static short scale(String name, float[] w, int offset, int len) {
        double sumAbs = 0;
        for (int i = 0; i < len; i++) {
            sumAbs += Math.abs(w[offset + i]);
        }
        return Halfs.scaleToF16((float) (sumAbs / len), name);
    }

    /** -1 for negative values, else +1 (plane 0 marks the negative ones). */
    static int code(float v) {
        return v < 0 ? -1 : 1;
    }
}
