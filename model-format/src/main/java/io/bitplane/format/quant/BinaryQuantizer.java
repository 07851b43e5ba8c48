package io.bitplane.format.quant;

import io.bitplane.format.Halfs;

/** BINARY per group (per row by default): XNOR-Net's binary-weight network, {@code w = sign(w) mean|w|}. */
final class BinaryQuantizer {
    private BinaryQuantizer() {
    }

    static short group(String name, float[] w, int offset, int len, int col0, Quantizer.PlaneRow out) {
        double sumAbs = 0;
        for (int i = 0; i < len; i++) {
            float v = w[offset + i];
            sumAbs += Math.abs(v);
            if (v < 0) {
                out.set(0, col0 + i);
            }
        }
        return Halfs.scaleToF16((float) (sumAbs / len), name);
    }
}
