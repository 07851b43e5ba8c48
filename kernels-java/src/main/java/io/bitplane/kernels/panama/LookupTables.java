package io.bitplane.kernels.panama;

import io.bitplane.format.TensorSpec;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * What the lookup-table tile kernels ({@link SignTileMatmul}, {@link Int4TileMatmul}) share: the tiles' shape, the
 * per-token tables, and the lookup of a chunk.
 *
 * <pre>
 * Tiles: R = TileRows.ROWS = 32 rows side by side, one per 16-bit lane of a 512-bit vector, in chunks of 16
 *   values of each row (C = ceil(K / 16) chunks per row); a row's word for a chunk has bit i for value 16c + i.
 * Tables, per token: 128 int16 per chunk, at 128 c: three tables over the chunk's codes q[16c + i] (codes past K
 *   count 0), each holding at index m the sum of its codes over the bits set in m: [0, 32) over codes 0-4, [32, 64)
 *   over codes 5-9, [64, 128) over codes 10-15.
 * A chunk's sum for a lane's word w is T0[w &amp; 31] + T1[(w &gt;&gt;&gt; 5) &amp; 31] + T2[w &gt;&gt;&gt; 10]: three
 *   lookups, where tables of 4 codes took four and a mask for each. With 32 lanes (AVX-512BW) a 32-entry table is
 *   one vector and its lookup, w.selectFrom(T0), one vpermw (whose wrapping of indexes is the mask); the 64
 *   entries of T2 are two vectors and selectFrom(T2a, T2b) one vpermi2w. So the kernels need vectors of 32 short
 *   lanes ({@link #POSSIBLE}).
 *   They write the lookups out: a helper method taking vectors was compiled on its own first and then found "too
 *   large" to inline in some compilations of a kernel, whose vectors it then boxed.
 * </pre>
 */
final class LookupTables {
    private LookupTables() {
    }

    static final int CHUNK_VALUES = 16;
    /**
     * Tables of 16 entries are built in 16 lanes. The tables add with {@code lanewise(ADD)} and {@code
     * lanewise(AND)}, not {@code add} and {@code and}: those are shared JDK methods whose call profile the JIT reads
     * when it compiles the 512-bit kernels, and 256-bit vectors passing through them made that profile mixed. In one
     * process running BINARY x INT8 and then TERNARY x INT8 (4096 x 14336, AVX-512), ternary then settled at 83-129 G
     * weights/s (three runs of twelve at 83-85); with the tables kept out of those methods, at 116-177 (alternated).
     */
    private static final VectorSpecies<Short> TABLE = ShortVector.SPECIES_256;
    /**
     * The system property that turns the lookup-table kernels off ({@code off}); {@code on} is the default where
     * they can run, and cannot force them where they cannot.
     */
    static final String PROPERTY = "bitplane.lookupTiles";

    /** Whether the kernels can run here: their tiles and lookups need vectors of 32 short lanes (512 bits). */
    static final boolean POSSIBLE = TileRows.ROWS == 32;

    /** Why the kernels cannot run here, for the messages that refuse them where {@link #POSSIBLE} is false. */
    static String whyNotPossible() {
        return "the lookup-table tile kernels need 512-bit vectors, and this JVM prefers "
                + ShortVector.SPECIES_PREFERRED.vectorBitSize();
    }

    /**
     * Whether the backend repacks for the lookup-table kernels: where they can run ({@link #POSSIBLE}, which
     * AVX-512BW's vpermw makes fast), unless {@link #PROPERTY} is {@code off}. Forced {@code on} where they cannot
     * run, they are not used, and one line says so.
     */
    static boolean worthUsing() {
        String forced = System.getProperty(PROPERTY, "");
        if (forced.equalsIgnoreCase("off")) {
            return false;
        }
        if (forced.equalsIgnoreCase("on") && !POSSIBLE) {
            System.err.println("bitplane: -D" + PROPERTY + "=on ignored: " + whyNotPossible());
        }
        return POSSIBLE;
    }

    static int chunks(TensorSpec spec) {
        return (int) ((spec.cols() + CHUNK_VALUES - 1) / CHUNK_VALUES);
    }

    /** Table entries per token: 128 per chunk of 16 values. */
    static int tableLength(TensorSpec spec) {
        return CHUNK_TABLE * chunks(spec);
    }

    /** Entries of a chunk's three tables (see the class comment). */
    static final int CHUNK_TABLE = 128;

    /** Lane m of BIT[i] is all ones when bit i of m is set: a table = sum over i of (BIT[i] and q_i). */
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

    /**
     * One token's tables from its codes {@code q[q0 .. q0 + K)} into {@code tables[t0 .. t0 + tableLength)}: per
     * chunk, the sums over four codes (16 lanes), then the entries with the fifth (and sixth) code added.
     */
    static void buildTables(TensorSpec spec, short[] q, int q0, short[] tables, int t0) {
        int k = (int) spec.cols();
        int chunks = chunks(spec);
        for (int c = 0; c < chunks; c++) {
            int i = CHUNK_VALUES * c;
            int at = t0 + CHUNK_TABLE * c;
            ShortVector t0Low = fourCodes(q, q0, i, k);
            t0Low.intoArray(tables, at);
            t0Low.lanewise(VectorOperators.ADD, code(q, q0, i + 4, k)).intoArray(tables, at + 16);
            ShortVector t1Low = fourCodes(q, q0, i + 5, k);
            t1Low.intoArray(tables, at + 32);
            t1Low.lanewise(VectorOperators.ADD, code(q, q0, i + 9, k)).intoArray(tables, at + 48);
            ShortVector t2Low = fourCodes(q, q0, i + 10, k);
            short c14 = code(q, q0, i + 14, k);
            short c15 = code(q, q0, i + 15, k);
            t2Low.intoArray(tables, at + 64);
            t2Low.lanewise(VectorOperators.ADD, c14).intoArray(tables, at + 80);
            t2Low.lanewise(VectorOperators.ADD, c15).intoArray(tables, at + 96);
            t2Low.lanewise(VectorOperators.ADD, (short) (c14 + c15)).intoArray(tables, at + 112);
        }
    }

    /** Lane m: the sum of codes i .. i + 3 over the bits set in m (m < 16). */
    private static ShortVector fourCodes(short[] q, int q0, int i, int k) {
        return BIT[0].lanewise(VectorOperators.AND, code(q, q0, i, k))
                .lanewise(VectorOperators.ADD, BIT[1].lanewise(VectorOperators.AND, code(q, q0, i + 1, k)))
                .lanewise(VectorOperators.ADD, BIT[2].lanewise(VectorOperators.AND, code(q, q0, i + 2, k)))
                .lanewise(VectorOperators.ADD, BIT[3].lanewise(VectorOperators.AND, code(q, q0, i + 3, k)));
    }

    private static short code(short[] q, int q0, int i, int k) {
        return i < k ? q[q0 + i] : 0;
    }
}
