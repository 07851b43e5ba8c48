package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.scalar.CpuWeights;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * What the C lookup tiles' weights share ({@link SignTileWeights}, {@link Base3TileWeights}; layouts in
 * lookup_tiles.h): tiles of 32 rows in groups of eight whose chunks interleave (and the sign tiles' scales as f32).
 */
final class LookupTiles {
    private LookupTiles() {
    }

    static final int TILE_ROWS = 32;
    /**
     * Rows of a group of tiles whose chunks interleave (the AVX2 build's BINARY groups are half as long, so this is
     * two of them): threads split a product at groups, so that each reads one stream, but the kernels take any range
     * of tiles.
     */
    static final int GROUP_ROWS = 8 * TILE_ROWS;
    private static final ValueLayout.OfShort F16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Tiles of {@code rows} rows, the last one partly past them. */
    static int tilesOf(long rows) {
        return (int) ((rows + TILE_ROWS - 1) / TILE_ROWS);
    }

    /**
     * Where the tiles of the pool's part {@code group} begin (the parts are groups of GROUP_ROWS rows, so that each
     * thread reads whole interleaved groups), or, for the part past the last, where the tensor's tiles end.
     */
    static int firstTileOfGroup(int group, long rows) {
        return Math.min(tilesOf(rows), group * (GROUP_ROWS / TILE_ROWS));
    }

    /**
     * Whether {@code tensor} is what both tile kernels take: a whole matrix of {@code encoding} with INT8
     * activations, of rows of at most 2^31 / 128 values, so that the kernels' int32 sums (up to 128 a value) cannot
     * overflow. Each kind adds its instruction set and the scales it takes (and BINARY its layout).
     */
    static boolean takesRows(BpmTensor tensor, Encoding encoding) {
        TensorSpec spec = tensor.spec();
        return tensor.isComplete() && spec.rank() == 2 && spec.encoding() == encoding
                && spec.activations() == ActivationHint.INT8 && spec.cols() <= Integer.MAX_VALUE / 128
                && spec.rows() <= Integer.MAX_VALUE;
    }

    /** The f16 scales of a tensor with one scale a row, as f32 in row order, in {@code memory} (the sign tiles'). */
    static MemorySegment floatScales(CpuWeights weights, WeightMemory memory) {
        long n = weights.spec().rows();
        MemorySegment scales = memory.allocate(4 * n);
        long scalesAt = weights.spec().scalesOffset();
        for (long r = 0; r < n; r++) {
            scales.setAtIndex(ValueLayout.JAVA_FLOAT, r, Halfs.f16ToFloat(weights.data().get(F16, scalesAt + 2 * r)));
        }
        return scales;
    }
}
