package io.bitplane.kernels.scalar;

import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.Weights;

/**
 * Weights a CPU backend has also copied into a layout of one of its kernels when they were uploaded. The file's
 * bytes stay the source for every other use (embedding rows, the reference kernels), so {@link CpuWeights#of}
 * gives them.
 */
public interface RepackedWeights extends Weights {
    CpuWeights source();

    @Override
    default TensorSpec spec() {
        return source().spec();
    }
}
