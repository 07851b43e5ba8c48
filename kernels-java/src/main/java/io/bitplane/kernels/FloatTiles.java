package io.bitplane.kernels;

import io.bitplane.format.TensorSpec;

/**
 * A backend that repacks some tensors at upload into lookup-table tiles whose products with float activations it
 * computes faster than plain kernels (the Java backend with the Vector API: binary, ternary and INT4 weights). The
 * native backend hands it those products, one token and batches alike, so every token of a tensor still takes the
 * same arithmetic whatever batch it comes in.
 */
public interface FloatTiles {
    /** Whether this backend's upload of a tensor of this spec gives tiles for float activations. */
    boolean floatTilesFor(TensorSpec spec);
}
