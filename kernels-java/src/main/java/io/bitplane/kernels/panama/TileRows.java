package io.bitplane.kernels.panama;

import jdk.incubator.vector.FloatVector;

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
     * Stores a tile's sums times the token's scale ({@code y = sum x s_x}, as the oracle) to {@code y[yo + row]} for
     * the tile's rows below {@code n}; {@code out} is scratch of a tile's length.
     */
    static void store(FloatVector even, FloatVector odd, float tokenScale, float[] out, float[] y, int yo,
                      int firstRow, int n) {
        int half = even.length();
        even.mul(tokenScale).intoArray(out, 0);
        odd.mul(tokenScale).intoArray(out, half);
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
