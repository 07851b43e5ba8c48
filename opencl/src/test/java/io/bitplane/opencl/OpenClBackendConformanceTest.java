package io.bitplane.opencl;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The OpenCL kernels against the scalar oracle, on the shared randomized shapes and misaligned weights. The build
 * runs it twice: with the products this device picks (a row per work-item on PoCL) and with a work-group per row.
 */
class OpenClBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        OpenClAvailability.assumePlatform();
        Backend b = Backends.create("opencl", 2);
        assertEquals("opencl", b.name());
        if ("workgroups".equals(System.getProperty("bitplane.opencl.products"))) {
            assertTrue(b.description().contains("products by work-group"), b.description());
        }
        return b;
    }
}
