package io.bitplane.kernels.panama;

import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * What the lookup-table tile kernels ({@link SignTileMatmul}, {@link Int4TileMatmul}) share: the tiles' shape and
 * the per-token tables.
 *
 * <pre>
 * Tiles: R = TileRows.ROWS rows side by side, one per 16-bit lane of the preferred vector (32 with 512 bits, 16
 *   with 256), in chunks of 16 values of each row (C = ceil(K / 16) chunks per row).
 * Tables, per token: table j (16 int16 at 16 j, j < 4C) holds at index m the sum of the INT8 codes q[4j + i] over
 *   the bits i set in m (codes past K count 0). A lookup loads R entries from 16 j on and picks among the first 16
 *   (selectFrom: vpermw with AVX-512BW), so the array has R - 16 entries of room at its end.
 * </pre>
 */
final class LookupTables {
    private LookupTables() {
    }

    static final int CHUNK_VALUES = 16;
    /** Tables of 16 entries are built in 16 lanes. */
    private static final VectorSpecies<Short> TABLE = ShortVector.SPECIES_256;
    /** The system property that forces the lookup-table kernels on or off ({@code on}, {@code off}). */
    static final String PROPERTY = "bitplane.lookupTiles";

    /** Whether the backend repacks for the lookup-table kernels: as {@link #PROPERTY} says, else if vpermw is there. */
    static boolean worthUsing() {
        String forced = System.getProperty(PROPERTY, "");
        if (forced.equalsIgnoreCase("on") || forced.equalsIgnoreCase("off")) {
            return forced.equalsIgnoreCase("on");
        }
        return ShortVector.SPECIES_PREFERRED.vectorBitSize() >= 512;
    }

    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + CHUNK_VALUES - 1) / CHUNK_VALUES);
    }

    /**
     * Table entries per token: 16 per 4 values, and room for a whole vector load at the last table (a lookup loads
     * TileRows.ROWS entries from its table on and picks among the first 16).
     */
    static int tableLength(TensorSpec spec) {
        return 4 * CHUNK_VALUES * chunks(spec) + TileRows.ROWS - 16;
    }

    /** Lane m of BIT[i] is all ones when bit i of m is set: table = sum over i of (BIT[i] and q_i). */
    private static final ShortVector[] BIT = new ShortVector[4];

    static {
        for (int i = 0; i < 4; i++) {
            short[] lanes = new short[16];
            for (int m = 0; m < 16; m++) {
                lanes[m] = (short) ((m >>> i & 1) == 0 ? 0 : -1);
            }
            BIT[i] = ShortVector.fromArray(TABLE, lanes, 0);
        }
    }

    /** Float tables per token: 16 entries per 4 values (no room needed: a lookup loads exactly 16 int lanes). */
    static int floatTableLength(TensorSpec spec) {
        return 4 * CHUNK_VALUES * chunks(spec);
    }

    /** Lane m of FLOAT_BIT[i] is 1 when bit i of m is set, else 0: table = sum over i of FLOAT_BIT[i] x_i. */
    private static final FloatVector[] FLOAT_BIT = new FloatVector[4];
    private static final VectorSpecies<Float> FLOAT_TABLE = FloatVector.SPECIES_512;

    static {
        for (int i = 0; i < 4; i++) {
            float[] lanes = new float[16];
            for (int m = 0; m < 16; m++) {
                lanes[m] = (m >>> i & 1) == 0 ? 0f : 1f;
            }
            FLOAT_BIT[i] = FloatVector.fromArray(FLOAT_TABLE, lanes, 0);
        }
    }

    /**
     * One token's float tables from its activations {@code x[x0 .. x0 + K)} into {@code tables[t0 ..)} as int bits
     * (looked up with IntVector.selectFrom, vpermd): table j at 16 j holds at m the sum of x[4j + i] over the bits i
     * of m (values past K count 0), added in the order i = 0..3.
     */
    static void buildFloatTables(TensorSpec spec, float[] x, int x0, int[] tables, int t0) {
        int k = (int) spec.cols();
        int quads = 4 * chunks(spec);
        for (int j = 0; j < quads; j++) {
            int i = 4 * j;
            float a = i < k ? x[x0 + i] : 0f;
            float b = i + 1 < k ? x[x0 + i + 1] : 0f;
            float c = i + 2 < k ? x[x0 + i + 2] : 0f;
            float d = i + 3 < k ? x[x0 + i + 3] : 0f;
            FLOAT_BIT[0].mul(a).add(FLOAT_BIT[1].mul(b)).add(FLOAT_BIT[2].mul(c)).add(FLOAT_BIT[3].mul(d))
                    .reinterpretAsInts().intoArray(tables, t0 + 16 * j);
        }
    }

    /** One token's tables from its codes {@code q[q0 .. q0 + K)} into {@code tables[t0 .. t0 + tableLength)}. */
    static void buildTables(TensorSpec spec, short[] q, int q0, short[] tables, int t0) {
        int k = (int) spec.cols();
        int quads = 4 * chunks(spec);
        for (int j = 0; j < quads; j++) {
            int i = 4 * j;
            short a = i < k ? q[q0 + i] : 0;
            short b = i + 1 < k ? q[q0 + i + 1] : 0;
            short c = i + 2 < k ? q[q0 + i + 2] : 0;
            short d = i + 3 < k ? q[q0 + i + 3] : 0;
            BIT[0].and(a).add(BIT[1].and(b)).add(BIT[2].and(c)).add(BIT[3].and(d)).intoArray(tables, t0 + 16 * j);
        }
    }
}
