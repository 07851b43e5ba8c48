package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The conformance suite on the native backend with every product in C: by default the backend hands products with
 * float activations over tiled weights (binary, ternary, INT4) to the Java backend, and the C kernels for them run
 * only where the Java backend has no tiles (no Vector API). {@code -Dbitplane.native.floatProducts=native} keeps
 * them in C, and this holds them to the oracle as {@link NativeBackendConformanceTest} does the default.
 */
class NativeFloatKernelsConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        NativeAvailability.assumeLoaded();
        String before = System.getProperty("bitplane.native.floatProducts");
        System.setProperty("bitplane.native.floatProducts", "native");
        try {
            Backend b = Backends.create("native", 2);
            assertFalse(b.description().contains("float-activation products"), b.description());
            return b;
        } finally {
            if (before == null) {
                System.clearProperty("bitplane.native.floatProducts");
            } else {
                System.setProperty("bitplane.native.floatProducts", before);
            }
        }
    }
}
