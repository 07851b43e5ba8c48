package io.bitplane.format;

/** How activations that meet a weight in a linear layer are represented (FORMAT.md section 6). */
public enum ActivationHint {
    /** Activations stay float. */
    F32(0),
    /** Activations are quantized per token to INT8 (symmetric absmax): W8A8, W4A8 and the like. */
    INT8(1),
    /**
     * Activations are binarized per token (XNOR-Net): one sign bit per value ({@code x < 0}) and one scale,
     * {@code mean |x|}. Only with BINARY weights, whose products become XNOR and popcount.
     */
    BINARY(2);

    public final int id;

    ActivationHint(int id) {
        this.id = id;
    }

    public static ActivationHint ofId(int id) {
        for (ActivationHint a : values()) {
            if (a.id == id) {
                return a;
            }
        }
        return null;
    }
}
