package io.bitplane.kernels;

import io.bitplane.format.TensorSpec;

/**
 * A backend that repacks some tensors at upload into tiles whose products it computes faster than plain kernels (the
 * Java backend with the Vector API). The native backend hands it the products of those tensors where its own C
 * kernels are slower, one token and batches alike, so every token of a tensor still takes the same arithmetic
 * whatever batch it comes in.
 */
public interface TiledProducts {
    /** Whether this backend's upload of a tensor of this spec gives tiles for float activations. */
    boolean floatTilesFor(TensorSpec spec);

    /** Whether this backend's upload of an INT4 or INT4_ASYM tensor of this spec gives tiles for INT8 activations. */
    boolean int4TilesFor(TensorSpec spec);

    /** Whether this backend's upload of an INT8 tensor of this spec gives tiles for INT8 activations. */
    boolean int8TilesFor(TensorSpec spec);

    /** Whether this backend's upload of a BINARY tensor of this spec gives tiles for binary activations. */
    boolean xnorTilesFor(TensorSpec spec);
}
