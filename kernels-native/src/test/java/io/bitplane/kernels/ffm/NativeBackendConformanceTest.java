package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The native kernels against the scalar oracle, on the shared randomized shapes and misaligned weights. The build
 * runs this twice: on the best implementation of this CPU and with {@code -Dbitplane.native.isa=portable}.
 */
class NativeBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        NativeAvailability.assumeLoaded();
        Backend b = Backends.create("native", 2);
        assertEquals("native", b.name());
        String wanted = System.getProperty("bitplane.native.isa", "best");
        if (wanted.equals("portable")) {
            assertTrue(b.description().contains("portable C"), b.description());
        }
        return b;
    }
}
