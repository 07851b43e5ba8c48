package io.bitplane.kernels.scalar;

import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.WorkerPool;

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

    /**
     * A layout-0 tensor in layout 1 (packed codes, FORMAT.md section 5), for backends whose kernels read packed
     * codes faster than bit planes: new native memory from {@code memory}, its rows split over {@code pool}.
     */
    public static CpuWeights packedCopy(TensorSpec spec, MemorySegment data, WorkerPool pool,
            WeightMemory memory) {
        TensorSpec packed = PackedCodes.packedSpec(spec);
        MemorySegment out = memory.allocate(packed.byteLength());
        pool.run((int) spec.rows(), (r0, r1) -> PackedCodes.relayoutRows(spec, data, out, r0, r1));
        PackedCodes.copyScales(spec, data, out);
        return new CpuWeights(packed, out);
    }
}
