package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.ActivationQuantizer;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.ForwardingBackend;
import io.bitplane.kernels.TiledProducts;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.WorkerPool;
import io.bitplane.kernels.scalar.ArrayBuffer;
import io.bitplane.kernels.scalar.CpuWeights;
import io.bitplane.kernels.scalar.RepackedWeights;
import io.bitplane.kernels.scalar.ScalarBackend;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The native backend: matrix products in C (bitplane_kernels.h) on the mapped weights, every other op of the
 * decoder step on the Java backend (the element-wise work is small next to the weights, and the Java kernels for it
 * are vectorized already). Threads come from one Java {@link WorkerPool}, which splits rows and calls C once per
 * slice, so one scheduler owns the cores.
 *
 * <p>Products with float activations over tensors that the Java backend repacks into lookup-table tiles (binary,
 * ternary, INT4) go to the Java backend: measured on the 418M models (2 threads, AVX-512), a token's sixteen
 * 2048 x 2048 ternary products took 1.1 ms on its tiles against 1.8 in C, and 256-token prompts ran 2.8x faster
 * (ternary) and 1.6x (INT4), decoding 1.3x (ternary). {@code -Dbitplane.native.floatProducts=native} keeps them
 * in C (the tests run both). So do INT4 and INT4_ASYM with INT8 activations where the group lanes below do not take
 * them (K not a multiple of 512, or the portable build): the general C path pays per group what the Java
 * backend's nibble tiles do not (one token, 2 threads: 172 x 64, stories260K's, 4.4 against 0.56 us a call; 2048 x
 * 5504 207 against 167). {@code -Dbitplane.native.int4Products=native} keeps them in C. And INT8 with INT8
 * activations outside the group lanes on the AVX-512 build alike (JMH, one token, 2 threads, calls/s, Java
 * against C: 172 x 64 1.76-1.86M against 0.37M; 4096 x 4096 with one scale a row 3,920 against 3,670, in groups of
 * 64 3,579 against 2,845; 4096 x 4000 in groups of 32 level); not on the AVX2 build, whose C kernel read 4096 x
 * 4096 at 1.46x the Java one's AVX2 code. {@code -Dbitplane.native.int8Products=native} keeps them in C. And
 * every product with INT8 or binary activations over groups that are not a multiple of 32 values (more than one a
 * row), except where the base-3 tiles below take them and the AVX-512 build's batches of six tokens or more: the C
 * kernels sum such groups value by value (4096 x 4096, 2 threads, `bitplane bench`, G weights/s, C against Java:
 * binary@48 x INT8 1.0 against 44-111, x binary 1.0 against 29; AVX2 code: ternary@16 0.7 against 28, ternary@48
 * 2.0 against 38, int8@16 3.0 against 24). {@code -Dbitplane.native.oddGroupProducts=native} keeps them in C.
 * And BINARY x binary activations in groups, which the Java backend tiles (its words side by side, a row per lane)
 * where C sums them row by row, group by group (4096 x 14336, 2 threads, `bitplane bench --activations binary`, G
 * weights/s, C against Java: binary@32 77 against 134, @64 40 against 176, @256 106 against 218; AVX2 code 66, 40 and
 * 103 against 106, 135 and 181). {@code -Dbitplane.native.xnorGroupProducts=native} keeps them in C (groups that are
 * not a multiple of 32 values with oddGroupProducts=native too). One scale a row stays in C, which reads it at the
 * memory's pace (AVX-512 240-263, 91-94% of the roofline; AVX2 build 160-211 against the Java tiles' 136-244 on AVX2
 * code: alike).
 *
 * <p>Some tensors with INT8 activations are re-laid at upload for faster C kernels: BINARY with one scale per row into
 * tiles of 32 rows for one token's product by lookup tables ({@link SignTileWeights}; where the AVX2 or AVX-512 build
 * runs, one scale a row or groups of a multiple of 16 values), TERNARY (one scale per row or per group) into base-3
 * tiles alike ({@link Base3TileWeights}; AVX-512, beside the packed codes that batches read), INT8, INT4 and INT4_ASYM
 * in groups of 32 into group lanes for products of up to five tokens ({@link GroupLaneWeights}; INT4 where the AVX2 or
 * AVX-512 build runs, INT8 on AVX-512; larger batches read the file's bytes), other TERNARY and INT4 planes into packed
 * codes.
 * {@code -Dbitplane.native.repack=off} keeps every tensor as the file lays it out.
 *
 * <p>Every shape, length, range and byte count is checked here before a downcall; the C code trusts them. Short
 * calls (those not worth splitting) use the critical handles, which read the Java arrays in place; long calls copy
 * the activations into native memory (small next to the weights) so that the garbage collector never waits for
 * them.
 */
public final class NativeBackend extends ForwardingBackend {

    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    private final NativeKernels kernels;
    private final WorkerPool pool;
    /** Whether float-activation products of tensors the Java backend tiles go to it (see the class comment). */
    private final boolean floatTiles;
    /** Whether INT4 x INT8 products the group lanes do not take go to the Java backend's tiles (class comment). */
    private final boolean int4Tiles;
    /** Likewise for INT8 x INT8 products, on the AVX-512 build only (class comment). */
    private final boolean int8Tiles;
    /**
     * Whether products with INT8 or binary activations over groups the C kernels sum value by value go to the Java
     * backend (oddGroups; class comment).
     */
    private final boolean oddGroupsOnJava;
    /** Whether BINARY x binary products in groups go to the Java backend's tiles (class comment). */
    private final boolean xnorTiles;
    /**
     * Whether upload re-lays tensors for faster kernels: BINARY into lookup tiles (SignTileWeights), TERNARY into
     * base-3 tiles (Base3TileWeights), INT8, INT4 and INT4_ASYM in groups of 32 into group lanes
     * (GroupLaneWeights), other TERNARY and INT4 planes into packed codes (packsAtLoad).
     * {@code -Dbitplane.native.repack=off} keeps every tensor as the file has it: to compare the kernels, and so
     * that the tests reach the planes' kernels too.
     */
    private final boolean repackAtLoad;
    /** Native copies of weights that were given on the heap, and the tiles and lanes upload makes; freed on close. */
    private final WeightMemory memory = WeightMemory.closeable();

    /** Native scratch per thread: the kernels' own (workers) and copied activations (callers), grown as needed. */
    private static final class Scratch {
        MemorySegment kernel = MemorySegment.NULL;
        MemorySegment x = MemorySegment.NULL;
        MemorySegment y = MemorySegment.NULL;
        MemorySegment xScales = MemorySegment.NULL;
        MemorySegment tables = MemorySegment.NULL;
        /** One token's values and codes, for quantizing the tokens of a batch after the first. */
        MemorySegment tokenValues = MemorySegment.NULL;
        MemorySegment tokenCodes = MemorySegment.NULL;
        /** The job and group size whose codes {@code tables} hold (see Int8Product), and each group's sum of them. */
        long tablesJob;
        long tablesGroup;
        MemorySegment codeSums = MemorySegment.NULL;
        /** The base-3 tiles' tables (bp_base3_tables), and the job and group size whose codes they hold. */
        MemorySegment base3Tables = MemorySegment.NULL;
        long base3TablesJob;
        long base3TablesGroup;
        byte[] q = new byte[0];
        long[] bits = new long[0];
        float[] scales = new float[0];
        /** Segments over the arrays this thread passes to C: a step's activations, the codes and scales above. */
        final HeapSegments heap = new HeapSegments(16);
        /** The calling thread's job over INT8 codes, its products, and the arguments of one product alone. */
        final Codes codes = new Codes();
        Int8Product[] products = new Int8Product[0];
        WorkerPool.Part[] parts = new WorkerPool.Part[0];
        /**
         * The weights of one product for {@link #productsOfInt8Codes}, in an Object[]: C2 (JDK 25) guesses that an
         * array of an interface type (Weights[]) is exactly that type and traps at a store into one the first time
         * it runs, sending matmul back to be compiled again (docs/PERFORMANCE.md, "What `bitplane bench` itself got
         * wrong"); an Object[] it gets right.
         */
        final Object[] oneWeights = new Object[1];
        final RowsProduct rows = new RowsProduct();
        float[][] ys = new float[1][];

        /** At least {@code count} products (and their parts, in order). */
        void products(int count) {
            if (products.length < count) {
                products = new Int8Product[count];
                parts = new WorkerPool.Part[count];
                for (int i = 0; i < count; i++) {
                    products[i] = new Int8Product();
                    parts[i] = products[i].part;
                }
            }
            if (ys.length < count) {
                ys = new float[count][];
            }
        }
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    NativeBackend(NativeKernels kernels, int threads) {
        this(kernels, new WorkerPool(threads));
    }

    /** The Java kernels run the other ops on the same pool, so attention over a long context is split too. */
    private NativeBackend(NativeKernels kernels, WorkerPool pool) {
        super(Backends.java(pool));
        this.kernels = kernels;
        this.pool = pool;
        String repack = System.getProperty("bitplane.native.repack", "on");
        this.repackAtLoad = switch (repack) {
            case "on" -> true;
            case "off" -> false;
            default -> throw new IllegalArgumentException("-Dbitplane.native.repack=" + repack + ": expected on or off");
        };
        this.floatTiles = inner instanceof TiledProducts && allowsJavaTiles("bitplane.native.floatProducts");
        this.int4Tiles = inner instanceof TiledProducts && allowsJavaTiles("bitplane.native.int4Products");
        this.int8Tiles = inner instanceof TiledProducts && allowsJavaTiles("bitplane.native.int8Products")
                && kernels.isa() == NativeKernels.ISA_AVX512;
        this.oddGroupsOnJava = allowsJavaTiles("bitplane.native.oddGroupProducts");
        this.xnorTiles = inner instanceof TiledProducts && allowsJavaTiles("bitplane.native.xnorGroupProducts");
    }

    /** A property saying where some products run: auto (the Java backend's tiles, where it has them) or native. */
    private static boolean allowsJavaTiles(String property) {
        String value = System.getProperty(property, "auto");
        return switch (value) {
            case "auto" -> true;
            case "native" -> false;
            default -> throw new IllegalArgumentException("-D" + property + "=" + value + ": expected auto or native");
        };
    }

    /**
     * Whether the Java backend should hold and compute this tensor (its tiles, or groups the C kernels would sum
     * value by value; see the class comment). A tensor shorter than its spec stays here, where every product refuses
     * it with the tensor's name.
     */
    private boolean onJavaTiles(BpmTensor tensor) {
        if (!tensor.isComplete()) {
            return false;
        }
        TensorSpec spec = tensor.spec();
        return floatTiles && ((TiledProducts) inner).floatTilesFor(spec)
                || int4Tiles && ((TiledProducts) inner).int4TilesFor(spec) && !inGroupLanes(tensor)
                || int8Tiles && ((TiledProducts) inner).int8TilesFor(spec) && !inGroupLanes(tensor)
                || xnorTiles && spec.groupsPerRow() > 1 && ((TiledProducts) inner).xnorTilesFor(spec)
                || oddGroupsOnJava && oddGroups(spec)
                        && !(repackAtLoad && Base3TileWeights.suits(tensor, kernels.isa()));
    }

    /**
     * Whether the C kernels would sum this tensor's products group by group value by value: INT8 or binary
     * activations over more than one group a row, of a size that is not a multiple of 32.
     */
    private static boolean oddGroups(TensorSpec spec) {
        return spec.activations() != ActivationHint.F32 && spec.encoding().quantized && spec.groupsPerRow() > 1
                && spec.effectiveGroupSize() % 32 != 0;
    }

    /**
     * Whether a batch over odd groups takes the AVX-512 build's VNNI batch kernel (batch_vnni: INT8 activations, 6
     * tokens or more, K and the group multiples of 4), which is faster than the Java backend there (JMH
     * `MatmulBenchmark -p backend=native -p shape=4096x4096 -p copies=4 -p batch=8`, calls/s, C against Java:
     * binary@48 1,091 against 628, int8@16 799 against 225; batches of 32 binary@48 498 against 316). The AVX2
     * build's batches sum odd groups value by value (batch 8: 73 against 347, 29 against 170).
     */
    private boolean oddGroupsInVnniBatch(TensorSpec spec, int batch) {
        return kernels.isa() == NativeKernels.ISA_AVX512 && spec.activations() == ActivationHint.INT8
                && batch > GroupLaneWeights.MAX_BATCH && spec.cols() % 4 == 0 && spec.effectiveGroupSize() % 4 == 0;
    }

    /**
     * Whether the Java backend computes a product of these weights: those it holds (onJavaTiles), except INT4 x
     * INT8 batches of more than {@link GroupLaneWeights#MAX_BATCH} tokens, which read the file's bytes here as the
     * group lanes' larger batches do (the C batch kernels are faster there; INT8 activations give the same bits
     * either way); over odd groups (oddGroups) every product but the VNNI batches (oddGroupsInVnniBatch), unless
     * this backend kept the tensor for falling short of its spec (its products refuse it by name). Package-private
     * for the routing tests.
     */
    boolean onJava(Weights w, int batch) {
        if (oddGroupsOnJava && oddGroups(w.spec()) && !(w instanceof NativeRepackedWeights)
                && !(w instanceof CpuWeights cw && !BpmTensor.isComplete(cw.spec(), cw.data()))) {
            return !(oddGroupsInVnniBatch(w.spec(), batch) && CpuWeights.of(w).data().isNative());
        }
        if (!(w instanceof RepackedWeights r) || w instanceof NativeRepackedWeights) {
            return false;
        }
        return batch <= GroupLaneWeights.MAX_BATCH || r.spec().activations() != ActivationHint.INT8
                || !r.source().data().isNative();
    }

    private boolean inGroupLanes(BpmTensor tensor) {
        return repackAtLoad && GroupLaneWeights.suits(tensor, kernels.isa());
    }

    @Override
    public String name() {
        return "native";
    }

    @Override
    public String description() {
        return "native (" + NativeLibrary.isaName(kernels.isa()) + ", " + pool.threads() + " threads; other ops"
                + (floatTiles ? " and float-activation products of tiled weights" : "")
                + (int8Tiles ? " and INT8 x INT8" : "")
                + (int4Tiles ? " and INT4 x INT8 products outside the group lanes" : "")
                + (oddGroupsOnJava ? " and products over groups that are not a multiple of 32" : "")
                + (xnorTiles ? " and binary x binary in groups" : "")
                + " on " + inner.name() + ")";
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        if (onJavaTiles(tensor)) {
            return inner.upload(tensor); // its tiles, which matmul hands back to it
        }
        MemorySegment data = tensor.data();
        if (!data.isNative()) {
            MemorySegment copy = memory.allocate(data.byteSize());
            copy.copyFrom(data);
            data = copy;
        }
        CpuWeights weights = new CpuWeights(tensor.spec(), data);
        if (repackAtLoad && SignTileWeights.suits(tensor, kernels.isa())) {
            return SignTileWeights.repack(kernels, pool, weights, memory);
        }
        if (inGroupLanes(tensor)) {
            // From the file's layout, without a packed copy.
            return GroupLaneWeights.repack(kernels, pool, weights, memory);
        }
        CpuWeights rows = repackAtLoad && packsAtLoad(tensor)
                ? CpuWeights.packedCopy(tensor.spec(), data, pool, memory) : weights;
        if (repackAtLoad && Base3TileWeights.suits(tensor, kernels.isa())) {
            Base3TileWeights tiles = Base3TileWeights.repack(kernels, pool, rows, memory); // batches read the rows
            return tiles != null ? tiles : rows;
        }
        return rows;
    }

    /**
     * TERNARY and INT4 bit planes with INT8 activations: the C kernels read packed codes faster (4096 x 14336, 2
     * threads, in one `bitplane bench` run: ternary 228 against 160 G weights/s, INT4 g32 60 against 49), so such a
     * tensor is re-laid as packed codes at upload, as `convert --layout packed` would have written it. BINARY has no
     * packed layout. A tensor whose bytes fall short of its spec keeps its kernels, which refuse it by name.
     */
    private static boolean packsAtLoad(BpmTensor tensor) {
        TensorSpec spec = tensor.spec();
        return spec.activations() == ActivationHint.INT8 && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && tensor.isComplete() && spec.rank() == 2 && PackedCodes.supports(spec.encoding());
    }

    @Override
    public void matmul(Weights w, Buffer xb, Buffer yb, int batch) {
        if (onJava(w, batch)) { // the Java backend's tiles
            inner.matmul(w, xb, yb, batch);
            return;
        }
        CpuWeights cw = CpuWeights.of(w);
        TensorSpec spec = cw.spec();
        ScalarBackend.checkMatmul(spec, xb, yb, batch);
        checkWeights(spec, cw.data());
        if (takesInt8Codes(spec)) {
            Scratch s = SCRATCH.get();
            s.products(1);
            s.oneWeights[0] = w;
            s.ys[0] = ArrayBuffer.of(yb);
            try {
                productsOfInt8Codes(s.oneWeights, 1, ArrayBuffer.of(xb), s.ys, batch);
            } finally {
                s.oneWeights[0] = null; // the thread's arrays outlive the model: keep nothing of it alive
                s.ys[0] = null;
            }
            return;
        }
        if (spec.activations() == ActivationHint.BINARY && spec.layout() == TensorSpec.LAYOUT_CANONICAL
                && spec.groupSize() % 64 == 0) {
            matmulXnor(cw, ArrayBuffer.of(xb), ArrayBuffer.of(yb), batch);
            return;
        }
        float[] x = ArrayBuffer.of(xb);
        float[] y = ArrayBuffer.of(yb);
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        Encoding e = spec.encoding();
        // Binary activations in groups that are not whole words: codes of -1 and +1 with one scale per token,
        // whose products the INT8 activation kernels compute exactly.
        boolean binaryAct = spec.activations() == ActivationHint.BINARY;
        Scratch s = SCRATCH.get();
        if (binaryAct) {
            quantize(s, x, batch, k, true);
        }
        boolean split = WorkerPool.worthSplitting((long) n * k * batch);
        RowsProduct p = s.rows;
        p.set(kernels, cw.data(), spec, batch, !split);
        p.xs = !split ? (binaryAct ? s.heap.of(s.q) : s.heap.of(x))
                : (binaryAct ? copyIn(s, s.q, batch * k) : copyIn(s, x, batch * k));
        p.ys = output(s, y, batch * n, split);
        p.tokenScales = binaryAct ? tokenScales(s, batch, split) : MemorySegment.NULL;
        if (!e.quantized) {
            p.kind = RowsProduct.FLOAT;
        } else {
            p.kind = binaryAct ? RowsProduct.QUANTIZED_CODES : RowsProduct.QUANTIZED_FLOAT;
            p.scratchBytes = kernels.scratchBytes(k, spec.effectiveGroupSize(), batch);
        }
        runRows(p, n, split, y, batch * n);
    }

    /** Quantized weights whose activation hint is INT8: their products start from the tokens' INT8 codes. */
    private static boolean takesInt8Codes(TensorSpec spec) {
        return spec.encoding().quantized && spec.activations() == ActivationHint.INT8;
    }

    /**
     * Attention on the C kernel (NativeAttention), split over the pool where it is long enough, where the AVX-512
     * build runs heads of whole 16-float vectors; elsewhere on the Java kernels, which were 3-4x faster than the C
     * kernel's plain loops (2 threads, position 512, AVX2: 97 against 287 us a call).
     */
    @Override
    public void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                          AttentionShape s) {
        float[] o = ArrayBuffer.of(out);
        float[] qa = ArrayBuffer.of(q);
        float[] k = ArrayBuffer.of(keys);
        float[] v = ArrayBuffer.of(values);
        int maxPosition = NativeAttention.check(o, qa, k, v, positions, batch, s); // either way, the same errors
        if (!attendsInC(s)) {
            super.attention(out, q, keys, values, positions, batch, s);
            return;
        }
        boolean split = pool.worthSplittingAttention(s, batch, maxPosition);
        NativeAttention.run(kernels, pool, split, o, qa, k, v, positions, batch, s, maxPosition);
    }

    /** Whether attention of this shape runs in C: on the AVX-512 build, heads of whole 16-float vectors. */
    private boolean attendsInC(AttentionShape s) {
        return kernels.isa() == NativeKernels.ISA_AVX512 && s.headSize() % 16 == 0;
    }

    /** Runs over caches of their own in one call (see {@link NativeAttention#runs}), where attention runs in C. */
    @Override
    public boolean attentionOfRuns(Buffer out, Buffer q, Buffer[] keys, Buffer[] values, int[] positions,
                                   int[] runStarts, int runs, AttentionShape s) {
        Backend.checkRuns(keys, values, runStarts, runs);
        if (!attendsInC(s)) {
            return super.attentionOfRuns(out, q, keys, values, positions, runStarts, runs, s);
        }
        float[] o = ArrayBuffer.of(out);
        float[] qa = ArrayBuffer.of(q);
        int maxPosition = 0;
        for (int i = 0; i < runs; i++) {
            maxPosition = Math.max(maxPosition, NativeAttention.check(o, qa, ArrayBuffer.of(keys[i]),
                    ArrayBuffer.of(values[i]), positions, runStarts[i], runStarts[i + 1], s));
        }
        int batch = runStarts[runs];
        NativeAttention.runs(kernels, pool, pool.worthSplittingAttention(s, batch, maxPosition), o, qa, keys, values,
                positions, runStarts, runs, s, maxPosition);
        return true;
    }

    /**
     * Products of one input that all start from its INT8 codes (a layer's q, k and v, say) run as one job: the
     * input quantized once, every product's rows split over the pool in one go (a 256 x 2048 product from DRAM
     * alone took 8.7 us in a 418M ternary model's decode, where its share of one job with q takes its bytes' time);
     * others go one by one.
     */
    @Override
    public void matmuls(Weights[] ws, Buffer xb, Buffer[] ybs, int batch) {
        Backend.checkProductsOfOneInput(ws, ybs);
        Scratch s = SCRATCH.get();
        s.products(ws.length);
        for (int i = 0; i < ws.length; i++) {
            if (onJava(ws[i], batch) || !takesInt8Codes(ws[i].spec())) {
                super.matmuls(ws, xb, ybs, batch);
                return;
            }
            CpuWeights cw = CpuWeights.of(ws[i]);
            ScalarBackend.checkMatmul(cw.spec(), xb, ybs[i], batch);
            checkWeights(cw.spec(), cw.data());
        }
        float[][] ys = s.ys;
        try {
            for (int i = 0; i < ws.length; i++) {
                ys[i] = ArrayBuffer.of(ybs[i]);
            }
            productsOfInt8Codes(ws, ws.length, ArrayBuffer.of(xb), ys, batch);
        } finally {
            java.util.Arrays.fill(ys, 0, ws.length, null); // the thread's arrays outlive the model
        }
    }

    /**
     * The tokens' INT8 codes and scales as a job's kernels read them, and whether its calls are short: the calling
     * thread's own, filled again for every job, which {@code job} numbers (worker threads build their tables once
     * per job).
     */
    private static final class Codes {
        private static final AtomicLong JOBS = new AtomicLong();
        MemorySegment q;
        MemorySegment scales;
        float firstScale;
        int batch;
        int k;
        boolean critical;
        long job;

        void set(MemorySegment q, MemorySegment scales, float firstScale, int batch, int k, boolean critical) {
            this.q = q;
            this.scales = scales;
            this.firstScale = firstScale;
            this.batch = batch;
            this.k = k;
            this.critical = critical;
            this.job = JOBS.incrementAndGet();
        }
    }

    /**
     * {@code ys[i] = ws[i] x} for the first {@code count} of checked weights of one width that {@link
     * #takesInt8Codes}: one job. {@code ws} holds Weights (a Weights[], or matmul's Object[] of one).
     */
    private void productsOfInt8Codes(Object[] ws, int count, float[] x, float[][] ys, int batch) {
        int k = (int) ((Weights) ws[0]).spec().cols();
        long weights = 0;
        for (int i = 0; i < count; i++) {
            weights += ((Weights) ws[i]).spec().rows() * k * batch;
        }
        Scratch s = SCRATCH.get();
        quantize(s, x, batch, k, false);
        boolean split = WorkerPool.worthSplitting(weights);
        Codes codes = s.codes;
        codes.set(split ? copyIn(s, s.q, batch * k) : s.heap.of(s.q), tokenScales(s, batch, split), s.scales[0], batch,
                k, !split);
        for (int i = 0; i < count; i++) {
            Int8Product p = s.products[i];
            Weights w = (Weights) ws[i];
            // Split: into the product's own native output (a slice of one would be a new object every call).
            p.ys = split ? (p.output = grow(p.output, w.spec().rows() * batch * Float.BYTES)) : s.heap.of(ys[i]);
            prepareInt8(p, w, codes);
        }
        try {
            pool.runParts(s.parts, count, split);
            if (split) {
                for (int i = 0; i < count; i++) {
                    MemorySegment.copy(s.products[i].output, FLOAT, 0, ys[i], 0,
                            (int) ((Weights) ws[i]).spec().rows() * batch);
                }
            }
        } finally {
            for (int i = 0; i < count; i++) {
                s.products[i].release();
            }
        }
    }

    /**
     * Fills {@code p} (its output set) as one product of a job over the tokens' INT8 codes: one token over BINARY
     * or base-3 TERNARY tiles by lookup tables, up to five over group lanes, else the kernels that read the file's
     * layout (or its packed copy).
     */
    private void prepareInt8(Int8Product p, Weights w, Codes c) {
        CpuWeights cw = CpuWeights.of(w);
        TensorSpec spec = cw.spec();
        p.kernels = kernels;
        p.codes = c;
        p.n = (int) spec.rows();
        p.encoding = spec.encoding().id;
        if (w instanceof SignTileWeights tiles && c.batch == 1) { // a batch goes through the file's planes below
            p.kind = Int8Product.SIGN_TILES;
            p.weights = tiles.tiles();
            p.rowScales = tiles.scales() != null ? tiles.scales() : MemorySegment.NULL;
            p.group = tiles.group();
            p.part.set(p.n, LookupTiles.GROUP_ROWS, p);
            return;
        }
        if (w instanceof Base3TileWeights tiles && c.batch == 1) { // a batch goes through the packed rows below
            p.kind = Int8Product.BASE3_TILES;
            p.weights = tiles.tiles();
            p.group = tiles.group();
            p.part.set(p.n, LookupTiles.GROUP_ROWS, p);
            return;
        }
        if (w instanceof GroupLaneWeights lanes && c.batch <= GroupLaneWeights.MAX_BATCH) { // larger: file's bytes
            p.kind = Int8Product.GROUP_LANES;
            p.weights = lanes.lanes();
            p.scratchBytes = kernels.scratchBytes(c.k, GroupLaneWeights.GROUP, 1);
            p.part.set(p.n, GroupLaneWeights.BLOCK_ROWS, p);
            return;
        }
        p.kind = Int8Product.ROWS;
        p.weights = cw.data();
        p.layout = spec.layout();
        p.group = spec.effectiveGroupSize();
        p.scratchBytes = kernels.scratchBytes(c.k, p.group, c.batch);
        p.scalesAt = spec.scalesOffset();
        p.minsAt = spec.encoding().hasMins() ? spec.minsOffset() : 0;
        p.part.set(p.n, 1, p);
    }

    /**
     * One product of a job over the tokens' INT8 codes, writing {@link #ys}: the calling thread's own (its
     * {@link Scratch}), filled again for every job, so that a steady-state product allocates nothing (a record of
     * the codes, a part and a capturing lambda per product, slices and heap segments were 392-664 bytes a call).
     * Over BINARY or base-3 tiles each thread builds its own tables, once per job (6-8 microseconds for 14336
     * values), rather than read the caller's: tables written by one core and read by the other moved between them
     * on every token, and building them once took 12-36 microseconds of a 4096 x 14336 product's 150-180.
     */
    private static final class Int8Product implements WorkerPool.RangeTask {
        static final int SIGN_TILES = 0;
        static final int GROUP_LANES = 1;
        static final int ROWS = 2;
        static final int BASE3_TILES = 3;

        final WorkerPool.Part part = new WorkerPool.Part();
        NativeKernels kernels;
        Codes codes;
        int kind;
        /** The tiles, the group lanes or the file's bytes, as {@link #kind} says. */
        MemorySegment weights;
        MemorySegment rowScales;
        int n;
        int encoding;
        int layout;
        long group;
        long scalesAt;
        long minsAt;
        long scratchBytes;
        /** Where the kernels write: {@link #output}, or the caller's array for a call on its thread alone. */
        MemorySegment ys;
        /** This product's native output for a split job, grown as needed, copied out after the job. */
        MemorySegment output = MemorySegment.NULL;

        /**
         * Drops the references to the weights and the caller's output (its native output stays, for the next
         * job): a thread's products outlive the model, whose repacked weights the garbage collector frees.
         */
        void release() {
            weights = null;
            rowScales = null;
            ys = null;
        }

        @Override
        public void run(int from, int to) {
            Codes c = codes;
            switch (kind) {
                case SIGN_TILES -> {
                    Scratch own = SCRATCH.get();
                    if (own.tablesJob != c.job || own.tablesGroup != group) {
                        own.tables = grow(own.tables, kernels.signTablesBytes(c.k, group));
                        own.codeSums = grow(own.codeSums, 4 * ((c.k + group - 1) / group));
                        kernels.signTables(c.q, c.k, group, own.tables, own.codeSums);
                        own.tablesJob = c.job;
                        own.tablesGroup = group;
                    }
                    kernels.matmulSignTiles(c.critical, weights, c.k, group, n, own.tables, own.codeSums, rowScales,
                            c.firstScale, ys, LookupTiles.firstTileOfGroup(from, n),
                            LookupTiles.firstTileOfGroup(to, n));
                }
                case BASE3_TILES -> {
                    Scratch own = SCRATCH.get();
                    if (own.base3TablesJob != c.job || own.base3TablesGroup != group) {
                        own.base3Tables = grow(own.base3Tables, kernels.base3TablesBytes(c.k, group));
                        kernels.base3Tables(c.q, c.k, group, own.base3Tables);
                        own.base3TablesJob = c.job;
                        own.base3TablesGroup = group;
                    }
                    kernels.matmulBase3Tiles(c.critical, weights, c.k, group, n, own.base3Tables, c.firstScale, ys,
                            LookupTiles.firstTileOfGroup(from, n), LookupTiles.firstTileOfGroup(to, n));
                }
                case GROUP_LANES -> kernels.matmulGroupLanes(c.critical, weights, encoding, c.k, n, c.q, c.scales, ys,
                        c.batch, from, to, kernelScratch(scratchBytes));
                default -> kernels.matmulQuantizedI8(c.critical, weights, encoding, layout, c.k, group, scalesAt,
                        minsAt, c.q, c.scales, ys, c.batch, n, from, to, kernelScratch(scratchBytes));
            }
        }
    }

    /** Binary weights x binary activations (groups of whole words): sign words per token, then bp_matmul_xnor. */
    private void matmulXnor(CpuWeights cw, float[] x, float[] y, int batch) {
        TensorSpec spec = cw.spec();
        int n = (int) spec.rows();
        int k = (int) spec.cols();
        int words = (int) spec.wordsPerRow();
        Scratch s = SCRATCH.get();
        if (s.bits.length < batch * words) {
            s.bits = new long[batch * words];
        }
        if (s.scales.length < batch) {
            s.scales = new float[batch];
        }
        for (int b = 0; b < batch; b++) {
            s.scales[b] = ActivationQuantizer.signWords(x, b * k, k, s.bits, b * words);
        }
        boolean split = WorkerPool.worthSplitting((long) n * k * batch);
        RowsProduct p = s.rows;
        p.set(kernels, cw.data(), spec, batch, !split);
        p.kind = RowsProduct.XNOR;
        p.xs = split ? copyIn(s, s.bits, batch * words) : s.heap.of(s.bits);
        p.tokenScales = tokenScales(s, batch, split);
        p.ys = output(s, y, batch * n, split);
        runRows(p, n, split, y, batch * n);
    }

    /**
     * Runs {@code p} over rows 0..n-1: split over the pool with results in its native {@code ys}, copied back to
     * {@code y} ({@code count} floats), or on this thread straight into {@code y}.
     */
    private void runRows(RowsProduct p, int n, boolean split, float[] y, int count) {
        try {
            if (split) {
                pool.run(n, p);
                MemorySegment.copy(p.ys, FLOAT, 0, y, 0, count);
            } else {
                p.run(0, n);
            }
        } finally {
            p.data = null; // the product outlives the model: keep no weights alive
            p.xs = null;
            p.ys = null;
        }
    }

    /**
     * One product over rows of the file's layout by the kernels that do not start from INT8 codes (float
     * activations; binary ones as codes of -1 and +1; XNOR over sign words): the calling thread's own (its
     * {@link Scratch}), filled again every call, so that the product allocates nothing (as {@link Int8Product}).
     */
    private static final class RowsProduct implements WorkerPool.RangeTask {
        static final int FLOAT = 0;
        static final int QUANTIZED_FLOAT = 1;
        static final int QUANTIZED_CODES = 2;
        static final int XNOR = 3;

        NativeKernels kernels;
        int kind;
        MemorySegment data;
        int encoding;
        int layout;
        int k;
        int n;
        long group;
        long scalesAt;
        long minsAt;
        int batch;
        boolean critical;
        long scratchBytes;
        /** The activations (floats, codes or sign words), their scales per token, and where the rows go. */
        MemorySegment xs;
        MemorySegment tokenScales;
        MemorySegment ys;

        void set(NativeKernels kernels, MemorySegment data, TensorSpec spec, int batch, boolean critical) {
            this.kernels = kernels;
            this.data = data;
            this.encoding = spec.encoding().id;
            this.layout = spec.layout();
            this.k = (int) spec.cols();
            this.n = (int) spec.rows();
            this.group = spec.effectiveGroupSize();
            this.scalesAt = spec.encoding().quantized ? spec.scalesOffset() : 0;
            this.minsAt = spec.encoding().hasMins() ? spec.minsOffset() : 0;
            this.batch = batch;
            this.critical = critical;
        }

        @Override
        public void run(int r0, int r1) {
            switch (kind) {
                case FLOAT -> kernels.matmulFloat(critical, data, encoding, k, xs, ys, batch, n, r0, r1);
                case QUANTIZED_FLOAT -> kernels.matmulQuantizedF32(critical, data, encoding, layout, k, group,
                        scalesAt, minsAt, xs, ys, batch, n, r0, r1, kernelScratch(scratchBytes));
                case QUANTIZED_CODES -> kernels.matmulQuantizedI8(critical, data, encoding, layout, k, group,
                        scalesAt, minsAt, xs, tokenScales, ys, batch, n, r0, r1, kernelScratch(scratchBytes));
                default -> kernels.matmulXnor(critical, data, k, group, scalesAt, xs, tokenScales, ys, batch, n, r0,
                        r1);
            }
        }
    }

    /** What the C kernels trust: a layout they know (spec.problem() ties it to the encoding), every byte inside. */
    private static void checkWeights(TensorSpec spec, MemorySegment data) {
        BpmTensor.requireComplete(spec, data);
        if (spec.layout() != TensorSpec.LAYOUT_CANONICAL && spec.layout() != TensorSpec.LAYOUT_PACKED) {
            throw new IllegalArgumentException("tensor " + spec.name() + ": the native kernels read layouts 0 and 1,"
                    + " not " + spec.layout());
        }
        if (spec.cols() > Integer.MAX_VALUE / 4 || spec.rows() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("tensor " + spec.name() + " is too large for one matrix product");
        }
    }

    /**
     * Per-token INT8 codes and scales of every token, in C (vectorized) with exactly the Java reference's results
     * ({@code ActivationQuantizer}; {@code NativeQuantizerTest} holds them equal).
     */
    private void quantize(Scratch s, float[] x, int batch, int k, boolean binary) {
        if (s.q.length < batch * k) {
            s.q = new byte[batch * k];
        }
        if (s.scales.length < batch) {
            s.scales = new float[batch];
        }
        if (binary) {
            for (int b = 0; b < batch; b++) {
                s.scales[b] = io.bitplane.kernels.ActivationQuantizer.binarize(x, b * k, k, s.q, b * k);
            }
            return;
        }
        // Token 0 straight from the arrays (C reads k values from the start); the others through native copies,
        // since a slice of an array's segment would be a new object per token.
        s.scales[0] = kernels.quantizeI8(s.heap.of(x), k, s.heap.of(s.q));
        if (batch > 1) {
            s.tokenValues = grow(s.tokenValues, (long) k * Float.BYTES);
            s.tokenCodes = grow(s.tokenCodes, k);
        }
        for (int b = 1; b < batch; b++) {
            MemorySegment.copy(x, b * k, s.tokenValues, FLOAT, 0, k);
            s.scales[b] = kernels.quantizeI8(s.tokenValues, k, s.tokenCodes);
            MemorySegment.copy(s.tokenCodes, ValueLayout.JAVA_BYTE, 0, s.q, b * k, k);
        }
    }

    private static MemorySegment copyIn(Scratch s, float[] x, int floats) {
        s.x = grow(s.x, (long) floats * Float.BYTES);
        MemorySegment.copy(x, 0, s.x, FLOAT, 0, floats);
        return s.x;
    }

    private static MemorySegment copyIn(Scratch s, byte[] q, int bytes) {
        s.x = grow(s.x, bytes);
        MemorySegment.copy(q, 0, s.x, ValueLayout.JAVA_BYTE, 0, bytes);
        return s.x;
    }

    private static MemorySegment copyIn(Scratch s, long[] words, int count) {
        s.x = grow(s.x, 8L * count);
        MemorySegment.copy(words, 0, s.x, ValueLayout.JAVA_LONG, 0, count);
        return s.x;
    }

    /**
     * The token scales ({@code s.scales}) as the kernels read them: the Java array in place for a call on this
     * thread, else a native copy.
     */
    private static MemorySegment tokenScales(Scratch s, int batch, boolean split) {
        if (!split) {
            return s.heap.of(s.scales);
        }
        s.xScales = grow(s.xScales, (long) batch * Float.BYTES);
        MemorySegment.copy(s.scales, 0, s.xScales, FLOAT, 0, batch);
        return s.xScales;
    }

    /**
     * Where the kernels write {@code count} floats of y: y itself on this thread, else native memory that
     * {@link #runRows} copies back.
     */
    private static MemorySegment output(Scratch s, float[] y, int count, boolean split) {
        if (!split) {
            return s.heap.of(y);
        }
        s.y = grow(s.y, (long) count * Float.BYTES);
        return s.y;
    }

    private static MemorySegment kernelScratch(long bytes) {
        Scratch s = SCRATCH.get();
        s.kernel = grow(s.kernel, bytes);
        return s.kernel;
    }

    /** A native segment of at least {@code bytes}, freed by the garbage collector once its thread drops it. */
    private static MemorySegment grow(MemorySegment current, long bytes) {
        if (current.byteSize() >= bytes) {
            return current;
        }
        return Arena.ofAuto().allocate(Math.max(bytes, 2 * current.byteSize()), 64);
    }

    @Override
    public void close() {
        pool.close();
        inner.close();
        memory.close();
    }
}
