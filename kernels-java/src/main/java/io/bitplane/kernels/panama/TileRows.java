package io.bitplane.kernels.panama;

import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.WeightMemory;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * What the kernels on tiles of rows ({@link SignTileMatmul}, {@link Int4TileMatmul}, {@link Int8TileMatmul}) share:
 * the tiles' shape, and the order of per-row floats. A tile is {@link #ROWS} rows side by side, one per 16-bit lane.
 * A pair of 16-bit lanes widens into one 32-bit lane, its low half (the even row of the pair) and its high half (the
 * odd row) into two vectors, so per-row values (scales, sums, results) are kept even rows first, then odd rows.
 */
final class TileRows {
    private TileRows() {
    }

    /**
     * The tiles' vectors: the preferred width (512 bits where the lookup kernels are chosen, 256 on AVX2, 128 on
     * NEON), and never narrower than 128 bits (the backend runs only where the preferred vectors are that wide).
     */
    static final VectorSpecies<Short> S = ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 128
            ? ShortVector.SPECIES_PREFERRED : ShortVector.SPECIES_128;
    /** Rows per tile: one per 16-bit lane. */
    static final int ROWS = S.length();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    static int tiles(TensorSpec spec) {
        return (int) ((spec.rows() + ROWS - 1) / ROWS);
    }

    /** The 4 KB page: where a stream of weights starts on one, the hardware prefetchers find it once. */
    static final int PAGE = 4096;

    /**
     * {@code bytes} of zeroed native memory from {@code memory} starting on a 4 KB page (WeightMemory aligns only
     * to 64 bytes below its huge pages), for tiles whose streams are laid out from page boundaries.
     */
    static MemorySegment pageAligned(WeightMemory memory, long bytes) {
        MemorySegment raw = memory.allocate(bytes + PAGE);
        return raw.asSlice((PAGE - raw.address() % PAGE) % PAGE, bytes);
    }

    /** Where row {@code lane} of a tile stands in even-then-odd order. */
    static int slot(int lane) {
        return lane % 2 == 0 ? lane / 2 : ROWS / 2 + lane / 2;
    }

    /** The row of a tile that stands at {@code slot} in even-then-odd order (the inverse of {@link #slot}). */
    static int row(int slot) {
        return slot < ROWS / 2 ? 2 * slot : 2 * (slot - ROWS / 2) + 1;
    }

    /**
     * Row {@code r}'s {@code groups} f16 values at {@code f16Offset} in {@code data} (its scales, or mins) as f32 into
     * {@code out}, in tile order: group g of tile t at ((t G + g) ROWS + slot) * 4.
     */
    static void putF32(MemorySegment data, long f16Offset, int groups, int r, MemorySegment out) {
        putF32(data, f16Offset, groups, r, r / ROWS, ROWS, slot(r % ROWS), out);
    }

    /**
     * As {@link #putF32(MemorySegment, long, int, int, MemorySegment)} for kernels whose tiles are {@code rows} rows
     * in order (tiles of their own widths): group g of tile t at ((t G + g) rows + r % rows) * 4.
     */
    static void putF32InRowOrder(MemorySegment data, long f16Offset, int groups, int r, int rows, MemorySegment out) {
        putF32(data, f16Offset, groups, r, r / rows, rows, r % rows, out);
    }

    private static void putF32(MemorySegment data, long f16Offset, int groups, int r, long tile, int rows, int slot,
                               MemorySegment out) {
        for (int g = 0; g < groups; g++) {
            float v = Halfs.f16ToFloat(data.get(PanamaBackend.SHORT, f16Offset + 2 * ((long) r * groups + g)));
            out.set(F32, ((tile * groups + g) * rows + slot) * 4, v);
        }
    }

    /**
     * Stores a tile's results {@code out} (even rows, then odd rows) to {@code y[yo + row]} for the tile's rows below
     * {@code n}. Takes an array, not vectors: a method that takes vectors and is not inlined boxes them (the kernels
     * are large enough that C2 stops inlining).
     */
    static void store(float[] out, float[] y, int yo, int firstRow, int n) {
        store(out, 0, y, yo, firstRow, n);
    }

    /**
     * For kernels whose results are rows in order (tiles of their own widths): {@code out[0 .. count)} to {@code
     * y[yo + firstRow ..]}, the rows below {@code n}.
     */
    static void storeInOrder(float[] out, int count, float[] y, int yo, int firstRow, int n) {
        for (int j = 0; j < count && firstRow + j < n; j++) {
            y[yo + firstRow + j] = out[j];
        }
    }

    /** As {@link #store(float[], float[], int, int, int)}, the tile's results at {@code out[outOffset ..]}. */
    static void store(float[] out, int outOffset, float[] y, int yo, int firstRow, int n) {
        for (int j = 0; j < ROWS; j++) {
            int r = firstRow + row(j);
            if (r < n) {
                y[yo + r] = out[outOffset + j];
            }
        }
    }
}
