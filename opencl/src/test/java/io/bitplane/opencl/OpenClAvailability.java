package io.bitplane.opencl;

import org.junit.jupiter.api.Assumptions;

/**
 * OpenCL needs an ICD loader and a platform (PoCL in CI, which .ci/run installs). Elsewhere the tests that need
 * one skip with the reason; under {@code CI=true} they fail instead, so a broken setup cannot pass unseen.
 */
final class OpenClAvailability {
    private OpenClAvailability() {
    }

    static void assumePlatform() {
        try {
            OpenClDevice.all();
        } catch (IllegalStateException e) {
            if (!"true".equalsIgnoreCase(System.getenv("CI"))) {
                Assumptions.abort("no OpenCL device here: " + e.getMessage());
            }
            throw e;
        }
    }
}
