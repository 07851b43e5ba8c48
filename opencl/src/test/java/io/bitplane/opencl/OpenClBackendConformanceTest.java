package io.bitplane.opencl;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The OpenCL kernels against the scalar oracle, on the shared randomized shapes and misaligned weights. */
class OpenClBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        OpenClAvailability.assumePlatform();
        Backend b = Backends.create("opencl", 2);
        assertEquals("opencl", b.name());
        return b;
    }
}
