package io.bitplane.kernels;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The Panama backend against the scalar oracle. */
class PanamaBackendConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        Backend b = Backends.create("java", 2);
        assertEquals("java", b.name(), "the tests run with the vector module, so the Panama backend loads");
        return b;
    }

    @Test
    void closingFreesTheUploadedWeights() {
        assertClosingFreesTheUploadedWeights(createBackend());
    }
}
