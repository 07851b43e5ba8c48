package io.bitplane.kernels.panama;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.TiledProducts;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ArrayBuffer;
import io.bitplane.kernels.scalar.CpuWeights;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;
import io.bitplane.kernels.scalar.ScalarMatmul;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Array;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntFunction;

/**
 * The Java backend: Panama Vector API kernels where they exist (F32, F16 and BF16; INT8 with F32 or INT8 activations;
 * the bit planes by lookup tables for one token on short groups and by row expansion otherwise; the element-wise ops),
 * the scalar reference kernels elsewhere, and a persistent worker pool that splits the rows of every large matrix
 * product. Some kernels want rows side by side in vector lanes, so their tensors are repacked once, at upload, into
 * memory of the backend's, freed when it closes (about as large as the tensor; the file's bytes stay for the other
 * ops): INT8 with INT8 activations ({@link Int8TileMatmul}) and with F32 ones ({@link Int8FloatTileMatmul}) and, where
 * vpermw makes their lookups cheap, ternary with INT8 activations and one scale a row in base-3 words ({@link
 * Base3TileMatmul}), other ternary and binary ({@link SignTileMatmul}), and INT4 with F32 activations ({@link
 * Int4TileMatmul}); INT4 with INT8 activations at every width ({@link NibbleTileMatmul}, and for batches {@link
 * Int4BatchMatmul}); without vpermw (AVX2), binary ({@link ByteTableMatmul}) and grouped ternary ({@link
 * NibbleTileMatmul}) with INT8 activations, and binary, ternary and INT4 ({@link TripleTableMatmul}) with F32
 * activations. Ternary with one scale a row reads the file's packed codes there (or a packed copy of its planes), token
 * by token ({@link PackedTernaryMatmul}) or, in batches, with the tokens in the lanes ({@link BatchTableMatmul}, which
 * takes batches of binary and of ternary in groups of whole blocks too, from the file's bytes, there and at 128 bits).
 * Attention runs {@link VectorAttention}'s kernels (heads of a vector or more) or {@link SmallHeadAttention}'s,
 * split over the pool by (token, head) pairs or (token, KV head) groups. Loaded only by {@link
 * io.bitplane.kernels.Backends} after it has checked that the vector module is present, so no other class names
 * this one.
 */
public final class PanamaBackend extends ScalarBackend implements TiledProducts {
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, VectorShape.forBitSize(F.vectorBitSize()));

    private final WorkerPool pool;

    /** Per-thread activation codes for W8A8, grown as needed. */
    private static final ThreadLocal<Int8Activations> INT8_ACTIVATIONS = ThreadLocal.withInitial(Int8Activations::new);

    private static final class Int8Activations {
        short[] q16 = new short[0];
        float[] scales = new float[0];
    }

    /** Closes the pool with the backend when it made it. */
    private final boolean ownsPool;
    /** The tiles and copies upload makes, freed when the backend closes (with its model). */
    private final WeightMemory memory = WeightMemory.closeable();
    /**
     * Whether ternary and binary tensors with INT8 activations (or F32 ones, and INT4 with F32 ones, where
     * SignTileMatmul.FLOAT_TABLES) are repacked at upload for the lookup-table kernels ({@link SignTileMatmul},
     * {@link Int4TileMatmul}).
     */
    private final boolean lookupTiles;

    public PanamaBackend(int threads) {
        this(new WorkerPool(threads), true, LookupTables.worthUsing());
    }

    /** On a pool the caller owns and closes (a backend that runs these kernels beside its own, on its threads). */
    public PanamaBackend(WorkerPool pool) {
        this(pool, false, LookupTables.worthUsing());
    }

    /**
     * With the lookup-table tile kernels on or off as asked (tests); on needs vectors of 32 short lanes
     * ({@link LookupTables#POSSIBLE}).
     */
    public PanamaBackend(int threads, boolean lookupTiles) {
        this(new WorkerPool(threads), true, checkedLookupTiles(lookupTiles));
    }

    private static boolean checkedLookupTiles(boolean on) {
        if (on && !LookupTables.POSSIBLE) {
            throw new IllegalArgumentException(LookupTables.whyNotPossible());
        }
        return on;
    }

    private PanamaBackend(WorkerPool pool, boolean ownsPool, boolean lookupTiles) {
        this.pool = pool;
        this.ownsPool = ownsPool;
        this.lookupTiles = lookupTiles;
    }

    /**
     * Weights this backend repacked into tiles at upload (the records below): what their products prepare from an
     * input depends on the tensor's kind and width only, never on its rows ({@link #matmuls}).
     */
    private interface TileWeights extends RepackedWeights {
    }

    /** Ternary weights (INT8 activations, one scale a row) with their tiles for {@link Base3TileMatmul}. */
    private record Base3Tiles(CpuWeights source, MemorySegment tiles) implements TileWeights {
    }

    /** Ternary or binary weights with their tiles for {@link SignTileMatmul}, beside the file's bytes. */
    private record SignTiles(CpuWeights source, MemorySegment tiles, MemorySegment groupScales)
            implements TileWeights {
    }

    /** INT4 and INT4_ASYM weights (F32 activations) with their tiles for {@link Int4TileMatmul}, beside the file's
     * bytes. */
    private record Int4Tiles(CpuWeights source, Int4TileMatmul.Tiles tiles) implements TileWeights {
    }

    /** INT8 weights with their tiles for {@link Int8TileMatmul}, beside the file's bytes. */
    private record Int8Tiles(CpuWeights source, Int8TileMatmul.Tiles tiles) implements TileWeights {
    }

    /** BINARY weights (binary activations) with their tiles for {@link XnorTileMatmul}. */
    private record XnorTiles(CpuWeights source, XnorTileMatmul.Tiles tiles) implements TileWeights {
    }

    /** BINARY weights with their tiles for {@link ByteTableMatmul}, beside the file's bytes. */
    private record ByteTiles(CpuWeights source, ByteTableMatmul.Tiles tiles) implements TileWeights {
    }

    /** BINARY, TERNARY, INT4 and INT4_ASYM weights with their tiles for {@link TripleTableMatmul} (F32 activations),
     * beside the file's bytes. */
    private record TripleTiles(CpuWeights source, TripleTableMatmul.Tiles tiles) implements TileWeights {
    }

    /** INT8 weights with their tiles for {@link Int8FloatTileMatmul} (F32 activations), beside the file's bytes. */
    private record Int8FloatTiles(CpuWeights source, Int8FloatTileMatmul.Tiles tiles) implements TileWeights {
    }

    /** INT4 and INT4_ASYM weights with their tiles for {@link NibbleFloatTileMatmul} (F32 activations, 128-bit
     * vectors), beside the file's bytes. */
    private record NibbleFloatTiles(CpuWeights source, NibbleFloatTileMatmul.Tiles tiles) implements TileWeights {
    }

    /** INT4, INT4_ASYM and grouped TERNARY weights with their tiles for {@link NibbleTileMatmul} (and {@link
     * Int4BatchMatmul}), beside the file's bytes. */
    private record NibbleTiles(CpuWeights source, NibbleTileMatmul.Tiles tiles) implements TileWeights {
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        Weights w = super.upload(tensor); // refuses, by name, a tensor whose bytes fall short: the repacks read all
        TensorSpec spec = tensor.spec();
        MemorySegment data = tensor.data();
        if (XnorTileMatmul.supports(spec)) {
            XnorTileMatmul.Tiles tiles = XnorTileMatmul.repack(spec, data, pool, memory);
            if (tiles != null) { // null: a scale is infinite or NaN, which the rows' kernel sums as the oracle does
                return new XnorTiles(CpuWeights.of(w), tiles);
            }
        }
        if (lookupTiles && Base3TileMatmul.supports(spec)) {
            MemorySegment tiles = Base3TileMatmul.repack(spec, data, pool, memory);
            if (tiles != null) { // null: packed fields of 3 (code 2), read by the kernels below
                return new Base3Tiles(CpuWeights.of(w), tiles);
            }
        }
        if (lookupTiles && SignTileMatmul.supports(spec)) {
            MemorySegment tiles = SignTileMatmul.repack(spec, data, pool, memory);
            if (tiles != null) { // null: packed fields of 3 (code 2), read by the kernels below
                return new SignTiles(CpuWeights.of(w), tiles, SignTileMatmul.groupScales(spec, data, pool, memory));
            }
        }
        if (lookupTiles && Int4TileMatmul.supports(spec)) {
            return new Int4Tiles(CpuWeights.of(w), Int4TileMatmul.repack(spec, data, pool, memory));
        }
        if (Int8TileMatmul.supports(spec)) {
            return new Int8Tiles(CpuWeights.of(w), Int8TileMatmul.repack(spec, data, pool, memory));
        }
        if (!lookupTiles && ByteTableMatmul.supports(spec)) {
            return new ByteTiles(CpuWeights.of(w), ByteTableMatmul.repack(spec, data, pool, memory));
        }
        if (!lookupTiles && TripleTableMatmul.supports(spec)) {
            TripleTableMatmul.Tiles tiles = TripleTableMatmul.repack(spec, data, pool, memory);
            if (tiles != null) { // null: packed ternary fields of 3 (code 2), read by the kernels below
                return new TripleTiles(CpuWeights.of(w), tiles);
            }
        }
        // On AVX-512 too: 28.7 against 9.8 G weights/s for Int8Matmul.rowsF32 (4096 x 4096, 2 threads, KProbe),
        // which also allocated a vector per block of rows there (C2 kept one of its four sums as an object).
        if (Int8FloatTileMatmul.supports(spec)) {
            return new Int8FloatTiles(CpuWeights.of(w), Int8FloatTileMatmul.repack(spec, data, pool, memory));
        }
        // INT4 x F32 where the lookup tiles and float tables above do not run (128-bit vectors, NEON's width).
        if (NibbleFloatTileMatmul.supports(spec)) {
            return new NibbleFloatTiles(CpuWeights.of(w), NibbleFloatTileMatmul.repack(spec, data, pool, memory));
        }
        if (NibbleTileMatmul.supports(spec) && (!lookupTiles || isInt4(spec))) {
            return new NibbleTiles(CpuWeights.of(w), NibbleTileMatmul.repack(spec, data, pool, memory));
        }
        if (!lookupTiles && packsAtLoad(tensor)) {
            return CpuWeights.packedCopy(spec, data, pool, memory);
        }
        return w;
    }

    /**
     * INT4 and INT4_ASYM: with INT8 activations they take the nibble tiles at every vector width. On AVX-512 the
     * lookup tables of Int4TileMatmul (four planes, three vpermw a plane and chunk) had served them; the nibble
     * tiles' shift, multiply and add per field read faster there too: `bitplane bench --backend java --shape
     * 4096x14336 --activations int8 --encodings int4 --layout packed,planes`, three alternated rounds, 25-39 ->
     * 44-75 G weights/s; the 418M W4A8 model decoded 56-64 -> 62-103 tokens/s (2026-12-04).
     */
    private static boolean isInt4(TensorSpec spec) {
        return spec.encoding() == Encoding.INT4 || spec.encoding() == Encoding.INT4_ASYM;
    }

    /**
     * TERNARY bit planes with INT8 activations where there are no lookup tiles (AVX2): {@link PackedTernaryMatmul}
     * reads them faster as packed codes than any kernel reads the planes (measured with -XX:UseAVX=2, 4096 x 4096,
     * 2 threads: 4.4 against 48.7 G weights/s; the 418M ternary model decoded 20 tokens/s from planes, 64 from the
     * packed file); in groups, {@link NibbleTileMatmul} tiles them straight from the planes.
     */
    private static boolean packsAtLoad(BpmTensor tensor) {
        TensorSpec spec = tensor.spec();
        return spec.activations() == ActivationHint.INT8 && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && PackedTernaryMatmul.supports(spec.withLayout(TensorSpec.LAYOUT_PACKED));
    }

    @Override
    public boolean floatTilesFor(TensorSpec spec) {
        return lookupTiles && spec.activations() == ActivationHint.F32
                && (SignTileMatmul.supports(spec) || Int4TileMatmul.supports(spec));
    }

    @Override
    public boolean int4TilesFor(TensorSpec spec) {
        return isInt4(spec) && NibbleTileMatmul.supports(spec);
    }

    @Override
    public boolean int8TilesFor(TensorSpec spec) {
        return Int8TileMatmul.supports(spec);
    }

    @Override
    public boolean xnorTilesFor(TensorSpec spec) {
        return XnorTileMatmul.supports(spec);
    }

    @Override
    public String name() {
        return "java";
    }

    @Override
    public String description() {
        return "java (Panama Vector API, " + F.vectorBitSize() + "-bit vectors, " + pool.threads() + " threads"
                + (lookupTiles ? ", lookup-table tiles" : "") + ")";
    }

    @Override
    public void matmul(Weights w, Buffer xb, Buffer yb, int batch) {
        TensorSpec spec = w.spec();
        checkMatmul(spec, xb, yb, batch);
        PreparedProduct.Set set = PreparedProduct.forThread(1);
        try {
            prepare(set.products[0], w, ArrayBuffer.of(xb), ArrayBuffer.of(yb), batch);
            pool.runParts(set.parts, 1, WorkerPool.worthSplitting(spec.rows() * spec.cols() * batch));
        } finally {
            set.release(1);
        }
    }

    /**
     * Products of one input as one job where every product prepares the same inputs (the same kind of weights,
     * encoding, group, layout and activations: the calling thread's quantized codes, and any tables, are then the
     * same for all); else one by one. A small product alone is mostly the threads' start: in the 418M ternary
     * model's decode, q, k and v one by one read 17 GB/s where the output projection, as large as q, read 25. Over
     * tiles, whose preparation reads nothing of a tensor but its width and kind, the first product's inputs serve
     * the others: each had quantized the input and built its tables again, into the same arrays (about 4
     * microseconds a product at 2048 values, on the calling thread while the others waited).
     */
    @Override
    public void matmuls(Weights[] ws, Buffer xb, Buffer[] ybs, int batch) {
        Backend.checkProductsOfOneInput(ws, ybs);
        long weights = 0;
        TensorSpec first = ws[0].spec();
        for (int i = 0; i < ws.length; i++) {
            TensorSpec spec = ws[i].spec();
            if (ws[i].getClass() != ws[0].getClass() || spec.encoding() != first.encoding()
                    || spec.groupSize() != first.groupSize() || spec.layout() != first.layout()
                    || spec.activations() != first.activations()) {
                super.matmuls(ws, xb, ybs, batch);
                return;
            }
            checkMatmul(spec, xb, ybs[i], batch);
            weights += spec.rows() * spec.cols() * batch;
        }
        float[] x = ArrayBuffer.of(xb);
        PreparedProduct.Set set = PreparedProduct.forThread(ws.length);
        try {
            for (int i = 0; i < ws.length; i++) {
                if (i > 0 && ws[0] instanceof TileWeights) {
                    set.products[i].shareInputs(set.products[0], ws[i], CpuWeights.of(ws[i]).data(),
                            ArrayBuffer.of(ybs[i]));
                } else {
                    prepare(set.products[i], ws[i], x, ArrayBuffer.of(ybs[i]), batch);
                }
            }
            pool.runParts(set.parts, ws.length, WorkerPool.worthSplitting(weights));
        } finally {
            set.release(ws.length);
        }
    }

    /**
     * Fills {@code p} with one product's kernel and its inputs, prepared on the calling thread (shapes checked),
     * and its part: units of tiles of rows, or of rows.
     */
    private void prepare(PreparedProduct p, Weights w, float[] x, float[] y, int batch) {
        CpuWeights cw = CpuWeights.of(w);
        TensorSpec spec = cw.spec();
        p.spec = spec;
        p.weights = w;
        p.data = cw.data();
        p.x = x;
        p.y = y;
        p.batch = batch;
        if (w instanceof Base3Tiles) {
            base3TileTask(p);
            p.units(TileRows.ROWS);
        } else if (w instanceof SignTiles) {
            signTileTask(p);
            p.units(TileRows.ROWS);
        } else if (w instanceof Int4Tiles) {
            int4TileTask(p);
            p.units(TileRows.ROWS);
        } else if (w instanceof Int8Tiles) {
            int8TileTask(p);
            p.units(TileRows.ROWS);
        } else if (w instanceof XnorTiles) {
            binarize(p);
            p.kernel = (q, t0, t1) -> XnorTileMatmul.tiles(q.spec, ((XnorTiles) q.weights).tiles(), q.longs,
                    q.scales, q.y, q.batch, t0, t1);
            p.units(XnorTileMatmul.ROWS);
        } else if ((w instanceof NibbleTiles || w instanceof ByteTiles) && BatchTableMatmul.takes(spec, batch)) {
            // Ternary in groups, binary (AVX2, 128 bits): the file's bytes, with the tokens in the lanes.
            batchTableTask(p);
            p.units(1);
        } else if (w instanceof NibbleTiles) {
            nibbleTileTask(p);
            p.units(TileRows.ROWS);
        } else if (w instanceof ByteTiles) {
            byteTableTask(p);
            p.units(ByteTableMatmul.ROWS);
        } else if (w instanceof TripleTiles) {
            tripleTableTask(p);
            p.units(TripleTableMatmul.ROWS);
        } else if (w instanceof Int8FloatTiles) {
            p.kernel = (q, t0, t1) -> Int8FloatTileMatmul.tiles(q.spec, ((Int8FloatTiles) q.weights).tiles(), q.x,
                    q.y, q.batch, t0, t1);
            p.units(Int8FloatTileMatmul.ROWS);
        } else if (w instanceof NibbleFloatTiles) {
            p.floatSums = spec.encoding() == Encoding.INT4_ASYM
                    ? activationSums(p.x, p.batch, (int) spec.cols(), (int) spec.effectiveGroupSize()) : null;
            p.kernel = (q, t0, t1) -> NibbleFloatTileMatmul.tiles(q.spec, ((NibbleFloatTiles) q.weights).tiles(),
                    q.x, q.floatSums, q.y, q.batch, t0, t1);
            p.units(NibbleFloatTileMatmul.ROWS);
        } else {
            prepareRows(p);
            p.units(1);
        }
    }

    /** The kernels over rows of the file's layout (no tiles made at upload). */
    private static void prepareRows(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int k = (int) spec.cols();
        boolean int8Act = spec.activations() == ActivationHint.INT8;
        if (spec.activations() == ActivationHint.BINARY) {
            // Only the XNOR kernels and the reference know binary activations; the others would read them as F32.
            if (XnorMatmul.supports(spec)) {
                xnorTask(p);
            } else {
                p.kernel = PanamaBackend::scalarRows;
            }
        } else if (spec.encoding() == Encoding.F32) {
            p.kernel = (q, r0, r1) -> F32Matmul.rows(q.data, (int) q.spec.cols(), q.x, q.y, (int) q.spec.rows(),
                    q.batch, r0, r1);
        } else if (HalfMatmul.supports(spec)) {
            p.kernel = (q, r0, r1) -> HalfMatmul.rows(q.spec, q.data, q.x, q.y, q.batch, r0, r1);
        } else if (PackedTernaryMatmul.supports(spec)) {
            packedTernaryTask(p);
        } else if (spec.encoding() == Encoding.INT8 && Int8Matmul.supports(spec, int8Act)) {
            if (int8Act) {
                Int8Activations a = quantize(p.x, p.batch, k);
                p.shorts = a.q16;
                p.scales = a.scales;
                p.kernel = (q, r0, r1) -> Int8Matmul.rowsInt8(q.spec, q.data, q.shorts, q.scales, q.y, q.batch, r0,
                        r1);
            } else {
                p.kernel = (q, r0, r1) -> Int8Matmul.rowsF32(q.spec, q.data, q.x, q.y, q.batch,
                        rowScratch(Int8Matmul.ROW_BLOCK * (int) q.spec.cols()), r0, r1);
            }
        } else if (ExpandedPlaneMatmul.supports(spec)
                && (ExpandedPlaneMatmul.preferredForOneToken(spec) || int8Act && p.batch > 1)) {
            // Integer sums are exact in either kernel, so only float activations need one kernel per shape.
            expandedTask(p, int8Act);
        } else if (BitPlaneMatmul.supports(spec)) {
            bitPlaneTask(p, int8Act);
        } else {
            p.kernel = PanamaBackend::scalarRows;
        }
    }

    private static void scalarRows(PreparedProduct p, int r0, int r1) {
        ScalarMatmul.matmul(p.spec, p.data, p.x, p.y, p.batch, r0, r1);
    }

    /** Sign words and scales of binarized activations, per calling thread. */
    private static final class BinaryInputs {
        long[] bits = new long[0];
        float[] scales = new float[0];
    }

    private static final ThreadLocal<BinaryInputs> BINARY_INPUTS = ThreadLocal.withInitial(BinaryInputs::new);

    /** The rows' XNOR kernel: where vectors are narrower than 256 bits, or a scale is infinite or NaN. */
    private static void xnorTask(PreparedProduct p) {
        binarize(p);
        p.kernel = (q, r0, r1) -> XnorMatmul.rows(q.spec, q.data, q.longs, q.scales, q.y, q.batch, r0, r1);
    }

    /** Binarizes every token on the calling thread; workers share the sign words read-only. */
    private static void binarize(PreparedProduct p) {
        TensorSpec spec = p.spec;
        float[] x = p.x;
        int batch = p.batch;
        int k = (int) spec.cols();
        int words = (int) spec.wordsPerRow();
        BinaryInputs in = BINARY_INPUTS.get();
        if (in.bits.length < batch * words) {
            in.bits = new long[batch * words];
        }
        if (in.scales.length < batch) {
            in.scales = new float[batch];
        }
        for (int t = 0; t < batch; t++) {
            in.scales[t] = VectorQuantizer.binarize(x, t * k, k, in.bits, t * words);
        }
        p.longs = in.bits;
        p.scales = in.scales;
    }

    private static final ThreadLocal<short[][]> PERMUTED_CODES = ThreadLocal.withInitial(() -> new short[1][0]);

    /**
     * Quantizes and permutes every token's activations on the calling thread; workers share them read-only. Batches
     * of {@link BatchTableMatmul#MIN_BATCH} and more take that kernel: both kernels' sums are exact, so which one a
     * batch takes does not change its results.
     */
    private static void packedTernaryTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int batch = p.batch;
        if (BatchTableMatmul.takes(spec, batch)) {
            batchTableTask(p);
            return;
        }
        int k = (int) spec.cols();
        int paddedK = PackedTernaryMatmul.paddedK(spec);
        Int8Activations a = quantize(p.x, batch, k);
        short[] xp = threadArray(PERMUTED_CODES, batch * paddedK);
        for (int t = 0; t < batch; t++) {
            PackedTernaryMatmul.prepare(spec, a.q16, t * k, xp, t * paddedK);
        }
        p.shorts = xp;
        p.intSums = codeSums(a, batch, k, (int) spec.effectiveGroupSize());  // one group per row
        p.scales = a.scales;
        p.kernel = (q, r0, r1) -> PackedTernaryMatmul.rows(q.spec, q.data, q.shorts, q.intSums, q.scales, q.y,
                q.batch, r0, r1);
    }

    /**
     * Every token's codes transposed into groups of {@link BatchTableMatmul#GROUP} (and their sums, for BINARY) on the
     * calling thread; workers share them read-only. The weights are the file's bytes (or the packed copy of ternary
     * planes with one scale a row).
     */
    private static void batchTableTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int k = (int) spec.cols();
        Int8Activations a = quantize(p.x, p.batch, k);
        short[] codes = threadArray(PERMUTED_CODES, BatchTableMatmul.transposedLength(spec, p.batch));
        int[] sums = spec.encoding() == Encoding.BINARY
                ? threadInts(TILE_CODE_SUMS, BatchTableMatmul.sumsLength(spec, p.batch)) : null;
        BatchTableMatmul.transpose(spec, a.q16, p.batch, codes, sums);
        p.shorts = codes;
        p.intSums = sums;
        p.scales = a.scales;
        p.kernel = (q, r0, r1) -> BatchTableMatmul.rows(q.spec, q.data, q.shorts, q.intSums, q.scales, q.y, q.batch,
                r0, r1);
    }

    private static final ThreadLocal<short[][]> TILE_CODES = ThreadLocal.withInitial(() -> new short[1][0]);

    /** The calling thread's array in {@code holder}, grown to at least {@code length}. */
    private static short[] threadArray(ThreadLocal<short[][]> holder, int length) {
        short[][] h = holder.get();
        if (h[0].length < length) {
            h[0] = new short[length];
        }
        return h[0];
    }

    /** As {@link #threadArray}, for bytes. */
    private static byte[] threadBytes(ThreadLocal<byte[][]> holder, int length) {
        byte[][] h = holder.get();
        if (h[0].length < length) {
            h[0] = new byte[length];
        }
        return h[0];
    }

    /** As {@link #threadArray}, for ints. */
    private static int[] threadInts(ThreadLocal<int[][]> holder, int length) {
        int[][] h = holder.get();
        if (h[0].length < length) {
            h[0] = new int[length];
        }
        return h[0];
    }

    /** As {@link #threadArray}, for floats. */
    static float[] threadFloats(ThreadLocal<float[][]> holder, int length) {
        float[][] h = holder.get();
        if (h[0].length < length) {
            h[0] = new float[length];
        }
        return h[0];
    }

    /** Quantizes every token on the calling thread into codes padded to whole pairs; the tiles are then split. */
    private static void int8TileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int batch = p.batch;
        int k = (int) spec.cols();
        int stride = 2 * Int8TileMatmul.pairs(spec);
        Int8Activations a = quantize(p.x, batch, k);
        short[] codes = threadArray(TILE_CODES, batch * stride);
        for (int t = 0; t < batch; t++) {
            System.arraycopy(a.q16, t * k, codes, t * stride, k);
            if (stride > k) {
                codes[t * stride + k] = 0;
            }
        }
        p.shorts = codes;
        p.scales = a.scales;
        p.kernel = (q, t0, t1) -> Int8TileMatmul.tiles(q.spec, ((Int8Tiles) q.weights).tiles(), q.shorts, q.scales,
                q.y, q.batch, t0, t1);
    }

    /**
     * One token's lookup tables from its codes or activations {@code input[at .. at + K)} into {@code tables[t0 ..]}:
     * a tile kernel's builder (a static method reference, which captures nothing).
     */
    @FunctionalInterface
    private interface TableBuilder<I, A> {
        void build(TensorSpec spec, I input, int at, A tables, int t0);
    }

    /** The lookup tables of one kind a thread last built ({@link #ownTables}), and for which job. */
    private static final class OwnTables<A> {
        long job = -1;
        A tables;
    }

    private static final ThreadLocal<OwnTables<short[]>> OWN_TABLES = ThreadLocal.withInitial(OwnTables::new);
    private static final ThreadLocal<OwnTables<int[]>> OWN_FLOAT_TABLES = ThreadLocal.withInitial(OwnTables::new);
    /** Numbers the prepared jobs, so that a thread knows whether its tables are the job's. */
    private static final AtomicLong JOBS = new AtomicLong();

    /**
     * Every token's lookup tables of product {@code p} ({@code stride} entries each, by {@code builder}) from its
     * codes or activations {@code input} (the calling thread's), built by the thread that runs a range of it into
     * that thread's own array in {@code own} (made by {@code allocate}), once a job (the products of one input share
     * one). Built once on the calling thread and shared, the tables (43 KB for 2048 values of base-3 tables, 118 KB
     * for 5632) moved from that core to the other on every product: JMH from the caches, ternary 512x2048, one
     * thread 13.2 microseconds a product, two 20.3; each thread's own, as the native backend builds them: see
     * docs/PERFORMANCE.md, "Tables built by each thread".
     */
    private static <I, A> A ownTables(ThreadLocal<OwnTables<A>> own, PreparedProduct p, I input, int stride,
                                      IntFunction<A> allocate, TableBuilder<I, A> builder) {
        OwnTables<A> mine = own.get();
        if (mine.job != p.job) {
            int k = (int) p.spec.cols();
            if (mine.tables == null || Array.getLength(mine.tables) < p.batch * stride) {
                mine.tables = allocate.apply(p.batch * stride);
            }
            for (int t = 0; t < p.batch; t++) {
                builder.build(p.spec, input, t * k, mine.tables, t * stride);
            }
            mine.job = p.job;
        }
        return mine.tables;
    }

    /**
     * Every token's codes in {@link Int4BatchMatmul}'s order (value 16c + i of token t at (c T + t) 16 + i, T the
     * padded batch), zero past K and for the padding tokens, in the calling thread's array.
     */
    private static short[] chunkMajorCodes(TensorSpec spec, Int8Activations a, int batch) {
        int k = (int) spec.cols();
        int chunk = Int4BatchMatmul.CHUNK_VALUES;
        int chunks = Int4BatchMatmul.chunks(spec);
        int tokens = Int4BatchMatmul.paddedTokens(batch);
        short[] codes = threadArray(TILE_CODES, chunks * tokens * chunk);
        Arrays.fill(codes, 0, chunks * tokens * chunk, (short) 0);
        for (int t = 0; t < batch; t++) {
            for (int c = 0; c < chunks; c++) {
                System.arraycopy(a.q16, t * k + c * chunk, codes, (c * tokens + t) * chunk,
                        Math.min(chunk, k - c * chunk));
            }
        }
        return codes;
    }

    private static final ThreadLocal<int[][]> TILE_CODE_SUMS = ThreadLocal.withInitial(() -> new int[1][0]);

    /**
     * Every token's sums of its codes over groups of {@code group} values (the last may be short), token t's at
     * {@code [t * ceil(K / group) ..]}, in the calling thread's array.
     */
    private static int[] codeSums(Int8Activations a, int batch, int k, int group) {
        int groups = group == 0 ? 0 : (k + group - 1) / group;
        int[] sums = threadInts(TILE_CODE_SUMS, batch * groups);
        for (int t = 0; t < batch; t++) {
            for (int g = 0; g < groups; g++) {
                int s = 0;
                for (int i = g * group; i < Math.min(k, (g + 1) * group); i++) {
                    s += a.q16[t * k + i];
                }
                sums[t * groups + g] = s;
            }
        }
        return sums;
    }

    private static final ThreadLocal<byte[][]> BYTE_TABLES = ThreadLocal.withInitial(() -> new byte[1][0]);

    /** Every token's byte tables and group sums of codes on the calling thread; workers share them read-only. */
    private static void byteTableTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int batch = p.batch;
        int k = (int) spec.cols();
        Int8Activations a = quantize(p.x, batch, k);
        int length = ByteTableMatmul.tableLength(spec);
        byte[] tables = threadBytes(BYTE_TABLES, batch * length);
        for (int t = 0; t < batch; t++) {
            ByteTableMatmul.tables(spec, a.q16, t * k, tables, t * length);
        }
        p.bytes = tables;
        p.intSums = codeSums(a, batch, k, (int) spec.effectiveGroupSize());
        p.scales = a.scales;
        p.kernel = (q, t0, t1) -> ByteTableMatmul.tiles(q.spec, ((ByteTiles) q.weights).tiles(), q.bytes, q.intSums,
                q.scales, q.y, q.batch, t0, t1);
    }

    private static final ThreadLocal<float[][]> TRIPLE_TABLES = ThreadLocal.withInitial(() -> new float[1][0]);

    /** Every token's float tables and group sums of activations on the calling thread; workers share them. */
    private static void tripleTableTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        float[] x = p.x;
        int batch = p.batch;
        int k = (int) spec.cols();
        int length = TripleTableMatmul.tableLength(spec);
        float[] tables = threadFloats(TRIPLE_TABLES, batch * length);
        for (int t = 0; t < batch; t++) {
            TripleTableMatmul.tables(spec, x, t * k, tables, t * length);
        }
        p.floats = tables;
        p.floatSums = activationSums(x, batch, k, (int) spec.effectiveGroupSize());
        p.kernel = (q, t0, t1) -> TripleTableMatmul.tiles(q.spec, ((TripleTiles) q.weights).tiles(), q.floats,
                q.floatSums, q.y, q.batch, t0, t1);
    }

    /**
     * Every token's padded codes and group sums on the calling thread; workers share them read-only. Batches of
     * INT4 from {@link Int4BatchMatmul#MIN_BATCH} tokens on take that kernel on the same tiles.
     */
    private static void nibbleTileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int batch = p.batch;
        int k = (int) spec.cols();
        Int8Activations a = quantize(p.x, batch, k);
        if (batch >= Int4BatchMatmul.MIN_BATCH && Int4BatchMatmul.supports(spec)) {
            p.scales = a.scales;
            p.shorts = chunkMajorCodes(spec, a, batch);
            p.intSums = spec.encoding() == Encoding.INT4_ASYM
                    ? codeSums(a, batch, k, (int) spec.effectiveGroupSize()) : null;
            p.kernel = (q, t0, t1) -> Int4BatchMatmul.tiles(q.spec, ((NibbleTiles) q.weights).tiles(), q.shorts,
                    q.intSums, q.scales, q.y, q.batch, t0, t1);
            return;
        }
        int paddedK = NibbleTileMatmul.paddedK(spec);
        short[] codes = threadArray(TILE_CODES, batch * paddedK);
        for (int t = 0; t < batch; t++) {
            NibbleTileMatmul.codes(spec, a.q16, t * k, codes, t * paddedK);
        }
        p.shorts = codes;
        p.intSums = codeSums(a, batch, k, (int) spec.effectiveGroupSize());
        p.scales = a.scales;
        p.kernel = (q, t0, t1) -> NibbleTileMatmul.tiles(q.spec, ((NibbleTiles) q.weights).tiles(), q.shorts,
                q.intSums, q.scales, q.y, q.batch, t0, t1);
    }

    /** F32 activations on INT4 tiles: every token's group sums of activations; each thread builds the tables. */
    private static void int4TileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        p.floatSums = activationSums(p.x, p.batch, (int) spec.cols(), (int) spec.effectiveGroupSize());
        p.job = JOBS.incrementAndGet();
        p.kernel = (q, t0, t1) -> Int4TileMatmul.tilesF32(q.spec, ((Int4Tiles) q.weights).tiles(),
                ownTables(OWN_FLOAT_TABLES, q, q.x, LookupTables.floatTableLength(q.spec), int[]::new,
                        LookupTables::buildFloatTables), q.floatSums, q.y, q.batch, t0, t1);
    }

    private static final ThreadLocal<float[][]> X_SUMS = ThreadLocal.withInitial(() -> new float[1][0]);

    /**
     * As {@link #codeSums}, for F32 activations: every token's sums over groups of {@code group} values (the last
     * may be short), token t's at {@code [t * ceil(K / group) ..]}, in the calling thread's array.
     */
    private static float[] activationSums(float[] x, int batch, int k, int group) {
        int groups = (k + group - 1) / group;
        float[] sums = threadFloats(X_SUMS, batch * groups);
        for (int t = 0; t < batch; t++) {
            for (int g = 0; g < groups; g++) {
                float s = 0f;
                for (int i = g * group; i < Math.min(k, (g + 1) * group); i++) {
                    s += x[t * k + i];
                }
                sums[t * groups + g] = s;
            }
        }
        return sums;
    }

    /** F32 activations: for BINARY each token's sum X (acc = X - 2 S); each thread builds the float tables. */
    private static void floatSignTileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int k = (int) spec.cols();
        p.floatSums = spec.encoding() == Encoding.BINARY ? activationSums(p.x, p.batch, k, k) : null;
        p.job = JOBS.incrementAndGet();
        p.kernel = (q, t0, t1) -> SignTileMatmul.tilesF32(q.spec, q.data, ((SignTiles) q.weights).tiles(),
                ownTables(OWN_FLOAT_TABLES, q, q.x, LookupTables.floatTableLength(q.spec), int[]::new,
                        LookupTables::buildFloatTables), q.floatSums, q.y, q.batch, t0, t1);
    }

    /** Every token's codes on the calling thread; each thread that runs tiles builds its own tables from them. */
    private static void base3TileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int k = (int) spec.cols();
        Int8Activations a = quantize(p.x, p.batch, k);
        p.shorts = a.q16;
        p.scales = a.scales;
        p.job = JOBS.incrementAndGet();
        p.kernel = (q, t0, t1) -> Base3TileMatmul.tiles(q.spec, q.data, ((Base3Tiles) q.weights).tiles(),
                ownTables(OWN_TABLES, q, q.shorts, Base3TileMatmul.tableLength(q.spec), short[]::new,
                        Base3TileMatmul::buildTables), q.scales, q.y, q.batch, t0, t1);
    }

    private static void signTileTask(PreparedProduct p) {
        TensorSpec spec = p.spec;
        int batch = p.batch;
        int k = (int) spec.cols();
        if (spec.activations() == ActivationHint.F32) {
            floatSignTileTask(p);
            return;
        }
        Int8Activations a = quantize(p.x, batch, k);
        p.shorts = a.q16; // each thread that runs tiles builds its own tables from the codes (ownTables)
        // BINARY: acc = X - 2 S, X the token's sum of codes per group
        p.intSums = spec.encoding() == Encoding.BINARY
                ? codeSums(a, batch, k, (int) spec.effectiveGroupSize()) : null;
        p.scales = a.scales;
        p.job = JOBS.incrementAndGet();
        p.kernel = (q, t0, t1) -> {
            SignTiles t = (SignTiles) q.weights;
            SignTileMatmul.tiles(q.spec, q.data, t.tiles(), t.groupScales(),
                    ownTables(OWN_TABLES, q, q.shorts, LookupTables.tableLength(q.spec), short[]::new,
                            LookupTables::buildTables), q.intSums, q.scales, q.y, q.batch, t0, t1);
        };
    }

    /** Padded activations (and INT4_ASYM group sums) of the expanding kernel, per calling thread. */
    private static final class ExpandedInputs {
        float[] xs = new float[0];
        float[] groupSums = new float[0];
    }

    private static final ThreadLocal<ExpandedInputs> EXPANDED_INPUTS = ThreadLocal.withInitial(ExpandedInputs::new);
    /** Rows widened or expanded to floats, per worker thread (grown as needed). */
    private static final ThreadLocal<float[]> ROW_SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    private static float[] rowScratch(int floats) {
        float[] a = ROW_SCRATCH.get();
        if (a.length < floats) {
            a = new float[floats];
            ROW_SCRATCH.set(a);
        }
        return a;
    }

    /** Prepares every token's activations on the calling thread; workers then expand rows and share them. */
    private static void expandedTask(PreparedProduct p, boolean int8Act) {
        TensorSpec spec = p.spec;
        float[] x = p.x;
        int batch = p.batch;
        int k = (int) spec.cols();
        int paddedK = ExpandedPlaneMatmul.paddedK(spec);
        int groups = (int) spec.groupsPerRow();
        ExpandedInputs in = EXPANDED_INPUTS.get();
        if (in.xs.length < batch * paddedK) {
            in.xs = new float[batch * paddedK];
        }
        if (in.groupSums.length < batch * groups) {
            in.groupSums = new float[batch * groups];
        }
        float[] xs = in.xs;
        float[] scales = null;
        if (int8Act) {
            Int8Activations a = quantize(x, batch, k);
            scales = a.scales;
            ExpandedPlaneMatmul.padActivations(a.q16, batch, k, xs, paddedK);
        } else {
            ExpandedPlaneMatmul.padActivations(x, batch, k, xs, paddedK);
        }
        if (spec.encoding() == Encoding.INT4_ASYM) {
            ExpandedPlaneMatmul.groupSums(spec, xs, batch, paddedK, in.groupSums);
        }
        p.floats = xs;
        p.scales = scales;
        p.floatSums = in.groupSums;
        p.kernel = (q, r0, r1) -> ExpandedPlaneMatmul.rows(q.spec, q.data, q.floats, q.scales, q.floatSums, q.y,
                q.batch, rowScratch(ExpandedPlaneMatmul.scratchFloats(q.batch)), r0, r1);
    }

    /** Lookup tables of the bit-plane kernel, per calling thread, grown as needed. */
    private static final class PlaneTables {
        float[] lut = new float[0];
        float[] sums = new float[0];
        int[] ilut = new int[0];
        int[] isums = new int[0];
    }

    private static final ThreadLocal<PlaneTables> PLANE_TABLES = ThreadLocal.withInitial(PlaneTables::new);

    /** Builds every token's tables on the calling thread; the rows are then split, the tables shared read-only. */
    private static void bitPlaneTask(PreparedProduct p, boolean int8Act) {
        TensorSpec spec = p.spec;
        float[] x = p.x;
        int batch = p.batch;
        int k = (int) spec.cols();
        int lutSize = bitPlaneLutSize(spec);
        int groups = (int) spec.groupsPerRow();
        int group = (int) spec.effectiveGroupSize();
        PlaneTables t = PLANE_TABLES.get();
        if (int8Act) {
            Int8Activations a = quantize(x, batch, k);
            if (t.ilut.length < batch * lutSize) {
                t.ilut = new int[batch * lutSize];
            }
            if (t.isums.length < batch * groups) {
                t.isums = new int[batch * groups];
            }
            int[] lut = t.ilut;
            int[] sums = t.isums;
            for (int b = 0; b < batch; b++) {
                BitPlaneMatmul.buildInt(a.q16, b * k, k, group, lut, b * lutSize, sums, b * groups);
            }
            p.ints = lut;
            p.intSums = sums;
            p.scales = a.scales;
            p.kernel = PanamaBackend::bitPlaneRowsInt;
            return;
        }
        if (t.lut.length < batch * lutSize) {
            t.lut = new float[batch * lutSize];
        }
        if (t.sums.length < batch * groups) {
            t.sums = new float[batch * groups];
        }
        float[] lut = t.lut;
        float[] sums = t.sums;
        for (int b = 0; b < batch; b++) {
            BitPlaneMatmul.buildFloat(x, b * k, k, group, lut, b * lutSize, sums, b * groups);
        }
        p.floats = lut;
        p.floatSums = sums;
        p.kernel = PanamaBackend::bitPlaneRowsFloat;
    }

    /** Lookup-table entries a token of {@code spec} needs: 16 for every 4 values. */
    private static int bitPlaneLutSize(TensorSpec spec) {
        return 16 * (((int) spec.cols() + 3) / 4);
    }

    private static void bitPlaneRowsInt(PreparedProduct p, int r0, int r1) {
        int lutSize = bitPlaneLutSize(p.spec);
        int groups = (int) p.spec.groupsPerRow();
        int n = (int) p.spec.rows();
        for (int b = 0; b < p.batch; b++) {
            BitPlaneMatmul.rowsInt(p.spec, p.data, p.ints, b * lutSize, p.intSums, b * groups, p.scales[b], p.y,
                    b * n, r0, r1);
        }
    }

    private static void bitPlaneRowsFloat(PreparedProduct p, int r0, int r1) {
        int lutSize = bitPlaneLutSize(p.spec);
        int groups = (int) p.spec.groupsPerRow();
        int n = (int) p.spec.rows();
        for (int b = 0; b < p.batch; b++) {
            BitPlaneMatmul.rowsFloat(p.spec, p.data, p.floats, b * lutSize, p.floatSums, b * groups, p.y, b * n, r0,
                    r1);
        }
    }

    /** Per-token INT8 codes as int16, equal to the scalar quantizer's (VectorQuantizer). */
    private static Int8Activations quantize(float[] x, int batch, int k) {
        Int8Activations a = INT8_ACTIVATIONS.get();
        if (a.q16.length < batch * k) {
            a.q16 = new short[batch * k];
        }
        if (a.scales.length < batch) {
            a.scales = new float[batch];
        }
        for (int b = 0; b < batch; b++) {
            a.scales[b] = VectorQuantizer.quantizeInt8(x, b * k, k, a.q16, b * k);
        }
        return a;
    }

    @Override
    public void add(Buffer acc, Buffer xb, int n) {
        float[] a = ArrayBuffer.of(acc);
        float[] x = ArrayBuffer.of(xb);
        int upper = F.loopBound(n);
        int i = 0;
        for (; i < upper; i += F.length()) {
            FloatVector.fromArray(F, a, i).add(FloatVector.fromArray(F, x, i)).intoArray(a, i);
        }
        for (; i < n; i++) {
            a[i] += x[i];
        }
    }

    @Override
    public void rmsNorm(Buffer out, Buffer xb, Weights gamma, int dim, int batch, float eps) {
        CpuWeights g = CpuWeights.of(gamma);
        if (g.spec().encoding() != Encoding.F32) {
            super.rmsNorm(out, xb, gamma, dim, batch, eps);
            return;
        }
        float[] o = ArrayBuffer.of(out);
        float[] x = ArrayBuffer.of(xb);
        int upper = F.loopBound(dim);
        for (int b = 0; b < batch; b++) {
            int off = b * dim;
            FloatVector ss = FloatVector.zero(F);
            int i = 0;
            for (; i < upper; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, x, off + i);
                ss = v.fma(v, ss);
            }
            float sum = Lanes.sum(F, ss);
            for (; i < dim; i++) {
                sum += x[off + i] * x[off + i];
            }
            float scale = 1.0f / (float) Math.sqrt(sum / dim + eps);
            i = 0;
            for (; i < upper; i += F.length()) {
                FloatVector.fromMemorySegment(F, g.data(), 4L * i, ByteOrder.LITTLE_ENDIAN)
                        .mul(FloatVector.fromArray(F, x, off + i).mul(scale)).intoArray(o, off + i);
            }
            for (; i < dim; i++) {
                o[off + i] = g.data().get(FLOAT, 4L * i) * (scale * x[off + i]);
            }
        }
    }

    /**
     * Heads of a long context over the pool: a token's 32 heads at position 500 are 4 M multiply-adds, which one
     * thread would otherwise do while the others wait for the next product.
     */
    @Override
    public void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                          AttentionShape s) {
        int pairs = batch * s.nHeads();
        boolean split = pool.worthSplittingAttention(s, batch, maxPosition(positions, batch));
        float[] o = ArrayBuffer.of(out);
        float[] qa = ArrayBuffer.of(q);
        float[] k = ArrayBuffer.of(keys);
        float[] v = ArrayBuffer.of(values);
        int groups = batch * s.nKvHeads();
        // Fewer groups than threads (one KV head, one token) would leave threads idle: head by head then (heads
        // shorter than a vector go by group always: a group of them is little work).
        int mode = attentionMode(s, !split || groups >= pool.threads());
        ATTENTION_CALLS.get().set(this, o, qa, k, v, positions, s, mode)
                .runOnce(pool, mode == AttentionCall.HEADS ? pairs : groups, split);
    }

    /**
     * The kernel attention of this shape takes: heads shorter than a vector, whole-vector heads by (token, KV head)
     * group where {@code byGroups}, else head by head.
     */
    private static int attentionMode(AttentionShape s, boolean byGroups) {
        return SmallHeadAttention.suits(s) ? AttentionCall.SMALL_HEADS
                : s.headSize() % F.length() == 0 && byGroups ? AttentionCall.KV_GROUPS : AttentionCall.HEADS;
    }

    /**
     * Runs of columns over caches of their own in one call: the (token, KV head) groups of every run split over the
     * pool at once, each group computed as {@link #attention} computes it (so the results are those of one call a
     * run). Where heads are neither whole vectors nor shorter than one, the caller attends run by run.
     */
    @Override
    public boolean attentionOfRuns(Buffer out, Buffer q, Buffer[] keys, Buffer[] values, int[] positions,
                                   int[] runStarts, int runs, AttentionShape s) {
        Backend.checkRuns(keys, values, runStarts, runs);
        int mode = attentionMode(s, true);
        if (mode == AttentionCall.HEADS) {
            return false;
        }
        int batch = runStarts[runs];
        AttentionCall call = ATTENTION_CALLS.get().set(this, ArrayBuffer.of(out), ArrayBuffer.of(q), null, null,
                positions, s, mode);
        call.setRuns(keys, values, runStarts, runs);
        call.runOnce(pool, batch * s.nKvHeads(), pool.worthSplittingAttention(s, batch, maxPosition(positions, batch)));
        return true;
    }

    /**
     * Attention's arguments for the pool's threads: the calling thread's own, filled again every call, so that
     * attention allocates nothing (as {@link PreparedProduct} for the products).
     */
    private static final class AttentionCall implements WorkerPool.RangeTask {
        /** Units of work: (token, head) pairs (attendHeads), or (token, KV head) groups of whole-vector heads
         * (attendKvGroups) or of heads shorter than a vector (SmallHeadAttention). */
        static final int HEADS = 0;
        static final int KV_GROUPS = 1;
        static final int SMALL_HEADS = 2;
        private PanamaBackend backend;
        private float[] o;
        private float[] q;
        private float[] k;
        private float[] v;
        private int[] positions;
        private AttentionShape shape;
        private int mode;
        // Runs over caches of their own (attentionOfRuns; runs == 0 for one cache, k and v): run i's columns start
        // at runStarts[i], its caches are runK[i] and runV[i].
        private float[][] runK = new float[0][];
        private float[][] runV = new float[0][];
        private int[] runStarts;
        private int runs;

        AttentionCall set(PanamaBackend backend, float[] o, float[] q, float[] k, float[] v, int[] positions,
                          AttentionShape shape, int mode) {
            this.backend = backend;
            this.o = o;
            this.q = q;
            this.k = k;
            this.v = v;
            this.positions = positions;
            this.shape = shape;
            this.mode = mode;
            Arrays.fill(runK, 0, runs, null);  // keeps no cache alive
            Arrays.fill(runV, 0, runs, null);
            this.runStarts = null;
            this.runs = 0;
            return this;
        }

        /** Runs units [0, units), split over {@code pool} or here, then keeps no backend nor cache alive. */
        void runOnce(WorkerPool pool, int units, boolean split) {
            try {
                pool.run(units, this, split);
            } finally {
                set(null, null, null, null, null, null, null, HEADS);
            }
        }

        void setRuns(Buffer[] keys, Buffer[] values, int[] runStarts, int runs) {
            if (runK.length < runs) {
                runK = new float[runs][];
                runV = new float[runs][];
            }
            for (int i = 0; i < runs; i++) {
                runK[i] = ArrayBuffer.of(keys[i]);
                runV[i] = ArrayBuffer.of(values[i]);
            }
            this.runStarts = runStarts;
            this.runs = runs;
        }

        @Override
        public void run(int from, int to) {
            if (runs > 0) {
                int kv = shape.nKvHeads();
                for (int i = 0; i < runs; i++) {
                    int lo = Math.max(from, runStarts[i] * kv);
                    int hi = Math.min(to, runStarts[i + 1] * kv);
                    if (lo < hi) {
                        attend(runK[i], runV[i], lo, hi);
                    }
                }
            } else {
                attend(k, v, from, to);
            }
        }

        private void attend(float[] keys, float[] values, int from, int to) {
            switch (mode) {
                case SMALL_HEADS -> SmallHeadAttention.attend(o, q, keys, values, positions, shape, from, to);
                case KV_GROUPS -> VectorAttention.attendKvGroups(o, q, keys, values, positions, shape, from, to);
                default -> backend.attendHeads(o, q, keys, values, positions, shape, from, to);
            }
        }
    }

    private static final ThreadLocal<AttentionCall> ATTENTION_CALLS = ThreadLocal.withInitial(AttentionCall::new);

    /** Heads of whole F vectors four positions at a time ({@link VectorAttention#scoresAt}), others as the oracle. */
    @Override
    protected void scores(float[] att, float[] q, int qo, float[] k, int ko, int stride, int count, int n,
                          float norm) {
        if (n % F.length() != 0) {
            super.scores(att, q, qo, k, ko, stride, count, n, norm); // a position at a time, by this headDot
            return;
        }
        VectorAttention.scoresAt(att, 0, q, qo, k, ko, stride, count, n, norm);
    }

    @Override
    protected float headDot(float[] a, int ao, float[] b, int bo, int n) {
        return VectorAttention.headDot(a, ao, b, bo, n);
    }

    @Override
    protected void scoresToWeights(float[] att, int size) {
        VectorAttention.softmax(att, size);
    }

    @Override
    protected void weightedSum(float[] out, int oo, float[] att, int count, float[] v, int vo, int stride, int n) {
        int i = VectorAttention.weightedSumVectors(out, oo, att, count, v, vo, stride, n);
        if (i < n) {
            super.weightedSum(out, oo + i, att, count, v, vo + i, stride, n - i); // the oracle's loop, same order
        }
    }

    /** SwiGLU with {@link VectorExp}: gate = gate * sigmoid(gate) * up. */
    @Override
    public void swiGlu(Buffer gateBuffer, Buffer upBuffer, int n) {
        float[] g = ArrayBuffer.of(gateBuffer);
        float[] u = ArrayBuffer.of(upBuffer);
        int upper = F.loopBound(n);
        int i = 0;
        for (; i < upper; i += F.length()) {
            FloatVector v = FloatVector.fromArray(F, g, i);
            FloatVector sig = VectorExp.exp(v.neg()).add(1f);
            v.div(sig).mul(FloatVector.fromArray(F, u, i)).intoArray(g, i);
        }
        for (; i < n; i++) {
            g[i] = g[i] / (VectorExp.exp(-g[i]) + 1f) * u[i];
        }
    }

    @Override
    public void close() {
        if (ownsPool) {
            pool.close();
        }
        memory.close();
    }

    /** The preferred vector size in bits (asked by the lookup before it commits to this backend). */
    public static int preferredBits() {
        return F.vectorBitSize();
    }
}
