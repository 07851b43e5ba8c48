package io.bitplane.kernels;

import io.bitplane.format.TensorSpec;

/** A tensor uploaded to a backend once per model (a CPU backend keeps the mapped file bytes: no copy). */
public interface Weights {
    TensorSpec spec();
}
