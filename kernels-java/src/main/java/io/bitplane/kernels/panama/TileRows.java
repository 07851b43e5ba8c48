package io.bitplane.kernels.panama;

/**
 * What the kernels on tiles of rows (one row per 16-bit lane) share: a pair of 16-bit lanes widens into one 32-bit
 * lane, its low half (the even row of the pair) and its high half (the odd row) into two vectors, so per-row floats
 * (scales, results) are kept even rows first, then odd rows.
 */
final class TileRows {
    private TileRows() {
    }

    /** Where row {@code lane} of a tile of {@code rows} stands in even-then-odd order. */
    static int slot(int lane, int rows) {
        return lane % 2 == 0 ? lane / 2 : rows / 2 + lane / 2;
    }

    /**
     * Stores a tile's results {@code out} (even rows, then odd rows) to {@code y[yo + row]} for the tile's rows below
     * {@code n}. Takes an array, not vectors: a method that takes vectors and is not inlined boxes them (the kernels
     * are large enough that C2 stops inlining).
     */
    static void store(float[] out, float[] y, int yo, int firstRow, int n) {
        int half = out.length / 2;
        for (int j = 0; j < half; j++) {
            int r = firstRow + 2 * j;
            if (r < n) {
                y[yo + r] = out[j];
            }
            if (r + 1 < n) {
                y[yo + r + 1] = out[half + j];
            }
        }
    }
}
