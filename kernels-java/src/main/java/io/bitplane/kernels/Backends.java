package io.bitplane.kernels;

import io.bitplane.kernels.scalar.ScalarBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.ServiceLoader;
import java.util.logging.Logger;

/**
 * The one place that decides which backend runs (Lucene's VectorizationProvider is the model). Backends beyond
 * the built-in Java ones (native, OpenCL) are found at run time through {@link BackendProvider} services, so
 * nothing here names them. Asked for no backend in particular, it takes the best available and logs one line
 * saying which and why; asked for one by name, it fails with a clear message if that one cannot run.
 */
public final class Backends {
    private Backends() {
    }

    private static final Logger LOG = Logger.getLogger(Backends.class.getName());

    /** Names the user may ask for. "java" is the best pure-Java backend (scalar until the Panama kernels land). */
    public static List<String> names() {
        List<String> names = new ArrayList<>(List.of("scalar", "java"));
        for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
            names.add(p.name());
        }
        return names;
    }

    /**
     * The backend named {@code name} ("auto" or null: the best available; the system property
     * {@code bitplane.backend} overrides "auto").
     */
    public static Backend create(String name) {
        String n = name == null ? "auto" : name.toLowerCase(Locale.ROOT);
        if (n.equals("auto")) {
            n = System.getProperty("bitplane.backend", "auto").toLowerCase(Locale.ROOT);
        }
        switch (n) {
            case "scalar":
                return new ScalarBackend();
            case "auto":
            case "java":
                LOG.fine("backend: scalar Java kernels (the Panama Vector API kernels are not built yet)");
                return new ScalarBackend();
            default:
                for (BackendProvider p : ServiceLoader.load(BackendProvider.class)) {
                    if (p.name().equals(n)) {
                        return p.create();
                    }
                }
                throw new IllegalArgumentException("backend '" + name + "' is not available here (available: "
                        + String.join(", ", names()) + ")");
        }
    }
}
