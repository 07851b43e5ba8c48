package io.bitplane.kernels;

import io.bitplane.kernels.scalar.ScalarBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;

/**
 * The one place that decides which backend runs (Lucene's VectorizationProvider is the model).
 * <ul>
 *   <li>"scalar": the reference kernels, one thread.</li>
 *   <li>"java": the Panama Vector API backend with a worker pool, when the JVM was started with
 *   {@code --add-modules jdk.incubator.vector} and its preferred vectors are at least 128 bits; otherwise the scalar
 *   backend, with one line on stderr saying why.</li>
 *   <li>"auto": the first provider found that is {@linkplain BackendProvider#automatic automatic} and starts (the
 *   native kernels, when their module is on the class path), else "java"; a provider that fails to start is
 *   named in one line on stderr. The system property {@code bitplane.backend} may name another backend.</li>
 *   <li>anything else: a {@link BackendProvider} found at run time (native, OpenCL), so nothing here names them.</li>
 * </ul>
 */
public final class Backends {
    private Backends() {
    }

    /** Names the user may ask for. */
    public static List<String> names() {
        List<String> names = new ArrayList<>(List.of("scalar", "java"));
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            names.add(p.name());
        }
        return names;
    }

    /**
     * For each backend found at run time that has a choice of devices: its devices, one line each, or the one
     * line that says why it cannot list them.
     */
    public static java.util.Map<String, List<String>> devices() {
        java.util.Map<String, List<String>> all = new java.util.LinkedHashMap<>();
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            try {
                List<String> devices = p.devices();
                if (!devices.isEmpty()) {
                    all.put(p.name(), devices);
                }
            } catch (IllegalStateException | LinkageError e) {
                all.put(p.name(), List.of("unavailable: " + e.getMessage()));
            }
        }
        return all;
    }

    /**
     * The first {@linkplain BackendProvider#streamReader stream reader} a backend found at run time offers (the
     * native library's, where it loads), or empty: {@code bitplane bench} then reads with its own Java loop.
     */
    public static java.util.Optional<java.util.function.ToLongFunction<java.lang.foreign.MemorySegment>>
            streamReader() {
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            try {
                var reader = p.streamReader();
                if (reader.isPresent()) {
                    return reader;
                }
            } catch (IllegalStateException | LinkageError e) {
                // a provider that cannot load has no reader; the next one may
            }
        }
        return java.util.Optional.empty();
    }

    public static Backend create(String name) {
        return create(name, Runtime.getRuntime().availableProcessors());
    }

    /** The backend named {@code name} using {@code threads} threads for its kernels (where it has threads). */
    public static Backend create(String name, int threads) {
        String n = name == null ? "auto" : name.toLowerCase(Locale.ROOT);
        if (n.equals("auto")) {
            n = System.getProperty("bitplane.backend", "auto").toLowerCase(Locale.ROOT);
        }
        switch (n) {
            case "auto":
                return automatic(threads);
            case "scalar":
                return new ScalarBackend();
            case "java":
                return javaBackend(threads);
            default:
                for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
                    if (p.name().equals(n)) {
                        try {
                            return p.create(threads);
                        } catch (IllegalStateException | LinkageError e) {
                            // The user asked for this backend by name: say why it cannot run, as a usage error.
                            throw new IllegalArgumentException("backend '" + n + "' cannot run here: "
                                    + e.getMessage(), e);
                        }
                    }
                }
                throw new IllegalArgumentException("backend '" + name + "' is not available here (available: "
                        + String.join(", ", names()) + ")");
        }
    }

    private static boolean warned;
    private static boolean warnedAutomatic;

    private static Backend automatic(int threads) {
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            if (p.automatic()) {
                try {
                    return p.create(threads);
                } catch (RuntimeException | LinkageError e) {
                    synchronized (Backends.class) {
                        if (!warnedAutomatic) {
                            warnedAutomatic = true;
                            System.err.println("bitplane: not using the " + p.name() + " backend: " + e.getMessage());
                        }
                    }
                }
            }
        }
        return javaBackend(threads);
    }

    /**
     * The Java kernels on a pool the caller owns (closing the result leaves the pool open), or the scalar kernels
     * where the Vector API cannot run: for a backend that hands its other ops to them on its own threads.
     */
    public static Backend java(WorkerPool pool) {
        if (vectorUnavailableReason() != null) {
            return javaBackend(1); // the scalar kernels, with the one line that says why
        }
        warnIfJitSlowsKernels();
        try {
            return (Backend) Class.forName("io.bitplane.kernels.panama.PanamaBackend")
                    .getConstructor(WorkerPool.class).newInstance(pool);
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("the Panama backend failed to start: " + e, e);
        }
    }

    private static Backend javaBackend(int threads) {
        String why = vectorUnavailableReason();
        if (why != null) {
            synchronized (Backends.class) {
                if (!warned) {
                    warned = true;
                    System.err.println("bitplane: using the scalar kernels: " + why);
                }
            }
            return new ScalarBackend();
        }
        warnIfJitSlowsKernels();
        try {
            return (Backend) Class.forName("io.bitplane.kernels.panama.PanamaBackend").getConstructor(int.class)
                    .newInstance(threads);
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new IllegalStateException("the Panama backend failed to start: " + e, e);
        }
    }

    private static boolean checkedJit;

    /**
     * One line on stderr where {@link #jitWarning} has something to say about this JVM, asked once (the HotSpot
     * bean costs a few milliseconds) before the first Panama backend starts.
     */
    private static synchronized void warnIfJitSlowsKernels() {
        if (checkedJit) {
            return;
        }
        checkedJit = true;
        String warning;
        try {
            warning = jitWarning(java.lang.management.ManagementFactory
                    .getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class)
                    .getVMOption("TieredCompilation").getValue());
        } catch (RuntimeException | LinkageError e) {
            return; // not HotSpot, or no such option: nothing known to say
        }
        if (warning != null) {
            System.err.println("bitplane: " + warning);
        }
    }

    /**
     * The warning for a JVM whose TieredCompilation option has the value given, or null. Without tiered compilation
     * C2 compiles the Vector API kernels from the interpreter's profiles alone and keeps the API's Java fallbacks
     * for some operations (a reinterpret, in one traced case): every Java kernel measured ran 5-10x slower
     * (docs/PERFORMANCE.md, "Shifts, streams and XNOR lanes").
     */
    static String jitWarning(String tieredCompilation) {
        return "false".equals(tieredCompilation)
                ? "-XX:-TieredCompilation makes the Java kernels 5-10x slower (C2 then compiles them without the"
                        + " profiles tiered compilation gathers); leave it on"
                : null;
    }

    /** Why the Panama backend cannot run here, or null when it can. */
    static String vectorUnavailableReason() {
        if ("scalar".equalsIgnoreCase(System.getProperty("bitplane.vectorization", ""))) {
            return "-Dbitplane.vectorization=scalar";
        }
        if (ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty()) {
            return "the Vector API is not enabled (start the JVM with --add-modules jdk.incubator.vector)";
        }
        try {
            int bits = (int) Class.forName("io.bitplane.kernels.panama.PanamaBackend").getMethod("preferredBits")
                    .invoke(null);
            if (bits < 128) {
                return "the preferred vector size is " + bits + " bits (at least 128 are useful)";
            }
        } catch (ReflectiveOperationException | LinkageError e) {
            return "the Vector API failed to load: " + e;
        }
        return null;
    }
}
