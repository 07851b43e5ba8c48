package io.bitplane.kernels;

/** The Panama backend's warm products and attention allocate nothing (with its lookup tiles where it uses them). */
class PanamaBackendAllocationTest extends AllocationConformance {
    @Override
    protected Backend createBackend() {
        return Backends.create("java", 2);
    }
}
