package io.bitplane.kernels.ffm;

import io.bitplane.kernels.AllocationConformance;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;

/** The native backend's warm products (and the Java attention it runs on) allocate nothing. */
class NativeBackendAllocationTest extends AllocationConformance {
    @Override
    protected Backend createBackend() {
        NativeAvailability.assumeLoaded();
        return Backends.create("native", 2);
    }
}
