package io.bitplane.kernels.ffm;

import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.CpuWeights;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicLong;

/**
 * TERNARY weights (one scale per row or per group of values, INT8 activations) with their base-3 tiles for
 * {@code bp_matmul_base3_tiles} (layout in base3_tiles.c: the scales ride in the tiles), beside the bytes every other
 * use reads (batches, embedding rows): 16 bits per 9 values where the file's fields or planes take 2 bits a value,
 * one lookup per three values. Taken where the AVX-512 build runs (vpermw); the tiles are a second copy of the
 * tensor, in native memory freed when these weights become unreachable.
 *
 * @param tiles the tiles, {@code bp_base3_tiles_bytes} long
 * @param group values per scale (the row's length for one scale a row)
 */
record Base3TileWeights(CpuWeights source, MemorySegment tiles, long group) implements NativeRepackedWeights {

    /**
     * Whether a tensor gets base-3 tiles from a backend whose kernels run the instruction set {@code isa}: any group
     * size, since the tiles read faster than the packed rows at every size measured (base3_tiles.c).
     */
    static boolean suits(BpmTensor tensor, int isa) {
        return isa >= NativeKernels.ISA_AVX512 && LookupTiles.takesRows(tensor, Encoding.TERNARY);
    }

    /**
     * Repacks {@code weights} (native memory, a tensor that {@link #suits}, in either layout) into {@code memory},
     * over the pool's threads; null where a packed field is 3, which no code has (the file's own kernels then say
     * so, by name).
     */
    static Base3TileWeights repack(NativeKernels kernels, WorkerPool pool, CpuWeights weights, WeightMemory memory) {
        TensorSpec spec = weights.spec();
        long n = spec.rows();
        long k = spec.cols();
        long group = spec.effectiveGroupSize();
        MemorySegment tiles = memory.allocate(kernels.base3TilesBytes(n, k, group));
        MemorySegment data = weights.data();
        int layout = spec.layout();
        long scalesAt = spec.scalesOffset();
        AtomicLong invalid = new AtomicLong();
        pool.run(LookupTiles.tilesOf(n), (t0, t1) -> invalid.addAndGet(kernels.base3TilesRepack(data, layout, k, group,
                scalesAt, n, t0, t1, tiles)));
        return invalid.get() != 0 ? null : new Base3TileWeights(weights, tiles, group);
    }
}
