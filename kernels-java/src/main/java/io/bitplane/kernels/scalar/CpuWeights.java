package io.bitplane.kernels.scalar;

import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.Weights;

import java.lang.foreign.MemorySegment;

/** Weights of a CPU backend: the tensor's bytes where they lie in the mapped model file. */
public record CpuWeights(TensorSpec spec, MemorySegment data) implements Weights {
    public static CpuWeights of(Weights w) {
        if (w instanceof CpuWeights c) {
            return c;
        }
        if (w instanceof RepackedWeights r) {
            return r.source();
        }
        throw new IllegalArgumentException("not CPU weights: " + w.getClass().getName());
    }
}
