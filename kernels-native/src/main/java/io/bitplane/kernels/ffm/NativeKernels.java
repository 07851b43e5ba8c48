package io.bitplane.kernels.ffm;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.LinkedHashMap;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * The hand-written bindings of {@code src/main/c/bitplane_kernels.h} (jextract cannot be installed here; the
 * header says how to regenerate them where it can). {@code NativeBindingsMatchHeaderTest} parses the header and
 * fails when a prototype and {@link #DESCRIPTORS} disagree. Downcall handles are made once per library.
 *
 * <p>Each kernel has two handles: a {@linkplain Linker.Option#critical critical} one that may read and write Java
 * arrays in place, for short calls (no thread-state transition, but the garbage collector waits for the call), and
 * a plain one for long calls, which must be given native memory.
 */
public final class NativeKernels {
    /** The header's BP_ABI_VERSION that these bindings were written for. */
    public static final int ABI_VERSION = 8;
    public static final int ISA_PORTABLE = 1;
    public static final int ISA_AVX2 = 2;
    public static final int ISA_AVX512 = 3;

    /** Every function of the header, in its order, with the layouts of its C types. */
    static final Map<String, FunctionDescriptor> DESCRIPTORS = new LinkedHashMap<>();

    static {
        DESCRIPTORS.put("bp_abi_version", FunctionDescriptor.of(JAVA_INT));
        DESCRIPTORS.put("bp_best_isa", FunctionDescriptor.of(JAVA_INT));
        DESCRIPTORS.put("bp_select_isa", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        DESCRIPTORS.put("bp_scratch_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT));
        DESCRIPTORS.put("bp_quantize_i8", FunctionDescriptor.of(JAVA_FLOAT, ADDRESS, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_matmul_float", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_LONG, ADDRESS,
                ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_matmul_quantized_f32", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                ADDRESS));
        DESCRIPTORS.put("bp_matmul_quantized_i8", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
                JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_matmul_xnor", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_sign_tiles_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_sign_tiles_repack", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_base3_tiles_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_base3_tiles_repack", FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_base3_tables_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_base3_tables", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_matmul_base3_tiles", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_sign_tables_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_sign_tables", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS));
        DESCRIPTORS.put("bp_matmul_sign_tiles", FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                ADDRESS, ADDRESS, ADDRESS, JAVA_FLOAT, ADDRESS, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_group_lanes_bytes", FunctionDescriptor.of(JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG));
        DESCRIPTORS.put("bp_group_lanes_repack", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT, JAVA_LONG,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_matmul_group_lanes", FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_attention", FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT,
                JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG, ADDRESS));
        DESCRIPTORS.put("bp_stream_read", FunctionDescriptor.of(JAVA_LONG, ADDRESS, JAVA_LONG));
    }

    private final MethodHandle abiVersion;
    private final MethodHandle bestIsa;
    private final MethodHandle selectIsa;
    private final MethodHandle scratchBytes;
    private final MethodHandle quantizeI8;
    private final MethodHandle[] matmulFloat;
    private final MethodHandle[] matmulQuantizedF32;
    private final MethodHandle[] matmulQuantizedI8;
    private final MethodHandle[] matmulXnor;
    private final MethodHandle signTilesBytes;
    private final MethodHandle signTilesRepack;
    private final MethodHandle base3TilesBytes;
    private final MethodHandle base3TilesRepack;
    private final MethodHandle base3TablesBytes;
    private final MethodHandle base3Tables;
    private final MethodHandle[] matmulBase3Tiles;
    private final MethodHandle signTablesBytes;
    private final MethodHandle signTables;
    private final MethodHandle[] matmulSignTiles;
    private final MethodHandle groupLanesBytes;
    private final MethodHandle groupLanesRepack;
    private final MethodHandle[] matmulGroupLanes;
    /** Critical only: it reads the KV cache, a Java array, in place (see {@link #attention}). */
    private final MethodHandle attention;
    /** Not critical: it reads hundreds of MB of native memory a call. */
    private final MethodHandle streamRead;
    private volatile int isa;

    /** Binds every function, or throws naming the first symbol the library lacks. */
    NativeKernels(SymbolLookup library) {
        abiVersion = handle(library, "bp_abi_version", false);
        bestIsa = handle(library, "bp_best_isa", false);
        selectIsa = handle(library, "bp_select_isa", false);
        scratchBytes = handle(library, "bp_scratch_bytes", true);
        quantizeI8 = handle(library, "bp_quantize_i8", true);
        matmulFloat = both(library, "bp_matmul_float");
        matmulQuantizedF32 = both(library, "bp_matmul_quantized_f32");
        matmulQuantizedI8 = both(library, "bp_matmul_quantized_i8");
        matmulXnor = both(library, "bp_matmul_xnor");
        signTilesBytes = handle(library, "bp_sign_tiles_bytes", true);
        signTilesRepack = handle(library, "bp_sign_tiles_repack", false);
        base3TilesBytes = handle(library, "bp_base3_tiles_bytes", true);
        base3TilesRepack = handle(library, "bp_base3_tiles_repack", false);
        base3TablesBytes = handle(library, "bp_base3_tables_bytes", true);
        base3Tables = handle(library, "bp_base3_tables", true);
        matmulBase3Tiles = both(library, "bp_matmul_base3_tiles");
        signTablesBytes = handle(library, "bp_sign_tables_bytes", true);
        signTables = handle(library, "bp_sign_tables", true);
        matmulSignTiles = both(library, "bp_matmul_sign_tiles");
        groupLanesBytes = handle(library, "bp_group_lanes_bytes", true);
        groupLanesRepack = handle(library, "bp_group_lanes_repack", false);
        matmulGroupLanes = both(library, "bp_matmul_group_lanes");
        attention = handle(library, "bp_attention", true);
        streamRead = handle(library, "bp_stream_read", false);
    }

    private static MethodHandle[] both(SymbolLookup library, String name) {
        return new MethodHandle[] {handle(library, name, false), handle(library, name, true)};
    }

    private static MethodHandle handle(SymbolLookup library, String name, boolean critical) {
        MemorySegment symbol = library.find(name).orElseThrow(
                () -> new IllegalStateException("the native library has no symbol " + name));
        Linker.Option[] options = critical ? new Linker.Option[] {Linker.Option.critical(true)}
                : new Linker.Option[0];
        return Linker.nativeLinker().downcallHandle(symbol, DESCRIPTORS.get(name), options);
    }

    public int abiVersion() {
        try {
            return (int) abiVersion.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int bestIsa() {
        try {
            return (int) bestIsa.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Selects the implementation for the whole process (capped at the best this CPU has); returns the one chosen. */
    public int selectIsa(int wanted) {
        try {
            isa = (int) selectIsa.invokeExact(wanted);
            return isa;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The implementation in use (ISA_PORTABLE, ISA_AVX2 or ISA_AVX512). */
    public int isa() {
        return isa;
    }

    /**
     * See bp_stream_read: reads every byte of {@code data}, which must be native memory (a heap segment is refused
     * with IllegalArgumentException), and returns the sum of its words.
     */
    public long streamRead(MemorySegment data) {
        if (!data.isNative()) {
            throw new IllegalArgumentException("bp_stream_read reads native memory only");
        }
        try {
            return (long) streamRead.invokeExact(data, data.byteSize());
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_scratch_bytes: what one thread's scratch for a quantized product of this shape must hold. */
    long scratchBytes(long k, long group, int batch) {
        try {
            return (long) scratchBytes.invokeExact(k, group, batch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_quantize_i8 (critical: x and q may be Java arrays). */
    float quantizeI8(MemorySegment x, long k, MemorySegment q) {
        try {
            return (float) quantizeI8.invokeExact(x, k, q);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_float. {@code critical}: a short call that may pass heap segments. */
    void matmulFloat(boolean critical, MemorySegment w, int encoding, long k, MemorySegment x, MemorySegment y,
                     int batch, long n, long rowStart, long rowEnd) {
        try {
            matmulFloat[critical ? 1 : 0].invokeExact(w, encoding, k, x, y, batch, n, rowStart, rowEnd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_quantized_f32. */
    void matmulQuantizedF32(boolean critical, MemorySegment w, int encoding, int layout, long k, long group,
                            long scalesOffset, long minsOffset, MemorySegment x, MemorySegment y, int batch, long n,
                            long rowStart, long rowEnd, MemorySegment scratch) {
        try {
            matmulQuantizedF32[critical ? 1 : 0].invokeExact(w, encoding, layout, k, group, scalesOffset, minsOffset,
                    x, y, batch, n, rowStart, rowEnd, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_xnor. */
    void matmulXnor(boolean critical, MemorySegment w, long k, long group, long scalesOffset, MemorySegment xBits,
                    MemorySegment xScales, MemorySegment y, int batch, long n, long rowStart, long rowEnd) {
        try {
            matmulXnor[critical ? 1 : 0].invokeExact(w, k, group, scalesOffset, xBits, xScales, y, batch, n, rowStart,
                    rowEnd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_quantized_i8. */
    void matmulQuantizedI8(boolean critical, MemorySegment w, int encoding, int layout, long k, long group,
                           long scalesOffset, long minsOffset, MemorySegment xq, MemorySegment xScales, MemorySegment y,
                           int batch, long n, long rowStart, long rowEnd, MemorySegment scratch) {
        try {
            matmulQuantizedI8[critical ? 1 : 0].invokeExact(w, encoding, layout, k, group, scalesOffset, minsOffset,
                    xq, xScales, y, batch, n, rowStart, rowEnd, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_sign_tiles_bytes: the tiles of an n x k BINARY tensor. */
    long signTilesBytes(long n, long k, long group) {
        try {
            return (long) signTilesBytes.invokeExact(n, k, group);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_sign_tiles_repack (native memory only: a long call). */
    void signTilesRepack(MemorySegment w, long k, long group, long scalesOffset, long n, long tileStart, long tileEnd,
                         MemorySegment tiles) {
        try {
            signTilesRepack.invokeExact(w, k, group, scalesOffset, n, tileStart, tileEnd, tiles);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_base3_tiles_bytes: the tiles of an n x k TERNARY tensor with a scale per {@code group} values. */
    long base3TilesBytes(long n, long k, long group) {
        try {
            return (long) base3TilesBytes.invokeExact(n, k, group);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_base3_tiles_repack (native memory only: a long call); returns how many packed fields were 3. */
    long base3TilesRepack(MemorySegment w, int layout, long k, long group, long scalesOffset, long n, long tileStart,
                          long tileEnd, MemorySegment tiles) {
        try {
            return (long) base3TilesRepack.invokeExact(w, layout, k, group, scalesOffset, n, tileStart, tileEnd, tiles);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_base3_tables_bytes. */
    long base3TablesBytes(long k, long group) {
        try {
            return (long) base3TablesBytes.invokeExact(k, group);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_base3_tables (critical: q may be a Java array). */
    void base3Tables(MemorySegment q, long k, long group, MemorySegment tables) {
        try {
            base3Tables.invokeExact(q, k, group, tables);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_base3_tiles. */
    void matmulBase3Tiles(boolean critical, MemorySegment tiles, long k, long group, long n, MemorySegment tables,
                          float xScale, MemorySegment y, long tileStart, long tileEnd) {
        try {
            matmulBase3Tiles[critical ? 1 : 0].invokeExact(tiles, k, group, n, tables, xScale, y, tileStart, tileEnd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_sign_tables_bytes. */
    long signTablesBytes(long k, long group) {
        try {
            return (long) signTablesBytes.invokeExact(k, group);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_sign_tables (critical: q may be a Java array); each group's sum of codes into {@code codeSums}. */
    void signTables(MemorySegment q, long k, long group, MemorySegment tables, MemorySegment codeSums) {
        try {
            signTables.invokeExact(q, k, group, tables, codeSums);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_sign_tiles. */
    void matmulSignTiles(boolean critical, MemorySegment tiles, long k, long group, long n, MemorySegment tables,
                         MemorySegment codeSums, MemorySegment scales, float xScale, MemorySegment y, long tileStart,
                         long tileEnd) {
        try {
            matmulSignTiles[critical ? 1 : 0].invokeExact(tiles, k, group, n, tables, codeSums, scales, xScale, y,
                    tileStart, tileEnd);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_group_lanes_bytes: the group lanes of an n x k INT8, INT4 or INT4_ASYM tensor. */
    long groupLanesBytes(int encoding, long n, long k) {
        try {
            return (long) groupLanesBytes.invokeExact(encoding, n, k);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_group_lanes_repack (native memory only: a long call). */
    void groupLanesRepack(MemorySegment w, int encoding, int layout, long k, long n, long scalesOffset,
                          long minsOffset, long blockStart, long blockEnd, MemorySegment lanes) {
        try {
            groupLanesRepack.invokeExact(w, encoding, layout, k, n, scalesOffset, minsOffset, blockStart, blockEnd,
                    lanes);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** See bp_matmul_group_lanes. */
    void matmulGroupLanes(boolean critical, MemorySegment lanes, int encoding, long k, long n, MemorySegment xq,
                          MemorySegment xScales, MemorySegment y, int batch, long blockStart, long blockEnd,
                          MemorySegment scratch) {
        try {
            matmulGroupLanes[critical ? 1 : 0].invokeExact(lanes, encoding, k, n, xq, xScales, y, batch, blockStart,
                    blockEnd, scratch);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * See bp_attention. Critical, so that it reads the Java arrays of the KV cache in place (copying them would cost
     * more than the call): the garbage collector waits for it, as long as one thread's groups take (tens of
     * microseconds a group at a few hundred positions).
     */
    void attention(MemorySegment q, MemorySegment keys, MemorySegment values, MemorySegment out,
                   MemorySegment positions, int nHeads, int nKvHeads, long headSize, int unitHeads, long unitStart,
                   long unitEnd, MemorySegment scores) {
        try {
            attention.invokeExact(q, keys, values, out, positions, nHeads, nKvHeads, headSize, unitHeads, unitStart,
                    unitEnd, scores);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }

    /** The layout a C type of the header maps to (used by the header test). */
    static ValueLayout layoutOf(String cType) {
        String t = cType.replace("const", "").trim();
        if (t.endsWith("*")) {
            return ADDRESS;
        }
        return switch (t) {
            case "int32_t" -> JAVA_INT;
            case "int64_t" -> JAVA_LONG;
            case "float" -> JAVA_FLOAT;
            default -> throw new IllegalArgumentException("no Java layout for the C type " + cType);
        };
    }
}
