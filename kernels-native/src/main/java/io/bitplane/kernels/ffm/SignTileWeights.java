package io.bitplane.kernels.ffm;

import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.CpuWeights;

import java.lang.foreign.MemorySegment;

/**
 * BINARY weights (one scale per row, or per group of a multiple of 16 values; INT8 activations) with their tiles for
 * {@code bp_matmul_sign_tiles} (layout in sign_tiles.c), beside the file's bytes, which every other use reads
 * (batches, embedding rows). One token's product by lookup tables over tiles of 32 rows (4096 x 14336, two threads,
 * from DRAM) read 253-271 G weights/s in {@code bitplane bench} and 313 in JMH on the AMD machine's AVX-512 build
 * (vpermw), where the kernel over the file's planes read 126-146; the AVX2 build (vpshufb over nibbles) on the
 * Intel machine 201-203 against 108-118. Taken where either runs, in groups too (the portable build's tiles are a
 * plain loop, slower than the planes' kernels). The tiles are a second copy of the tensor's bits, in native memory
 * freed when these weights become unreachable.
 *
 * @param tiles  the tiles, {@code bp_sign_tiles_bytes} long
 * @param scales one scale a row: the rows' scales as f32, in row order; in groups null (the tiles hold them)
 * @param group  values per scale (the row's length for one scale a row)
 */
record SignTileWeights(CpuWeights source, MemorySegment tiles, MemorySegment scales, long group)
        implements NativeRepackedWeights {

    /** Whether a tensor gets tiles from a backend whose kernels run the instruction set {@code isa}. */
    static boolean suits(BpmTensor tensor, int isa) {
        TensorSpec spec = tensor.spec();
        boolean groupsFit = spec.groupsPerRow() == 1 || spec.effectiveGroupSize() % 16 == 0;
        return isa >= NativeKernels.ISA_AVX2 && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && LookupTiles.takesRows(tensor, Encoding.BINARY) && groupsFit;
    }

    /**
     * Repacks {@code weights} (native memory, a tensor that {@link #suits}) into {@code memory}, over the pool's
     * threads.
     */
    static SignTileWeights repack(NativeKernels kernels, WorkerPool pool, CpuWeights weights,
            WeightMemory memory) {
        TensorSpec spec = weights.spec();
        long n = spec.rows();
        long k = spec.cols();
        long group = spec.effectiveGroupSize(); // at least K for one scale a row, which the kernels take as one group
        long scalesAt = spec.scalesOffset();
        MemorySegment tiles = memory.allocate(kernels.signTilesBytes(n, k, group));
        MemorySegment data = weights.data();
        pool.run(LookupTiles.tilesOf(n), (t0, t1) -> kernels.signTilesRepack(data, k, group, scalesAt, n, t0, t1,
                tiles));
        MemorySegment scales = spec.groupsPerRow() == 1 ? LookupTiles.floatScales(weights, memory) : null;
        return new SignTileWeights(weights, tiles, scales, group);
    }
}
