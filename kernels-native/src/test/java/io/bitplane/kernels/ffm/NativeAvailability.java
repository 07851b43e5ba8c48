package io.bitplane.kernels.ffm;

import org.junit.jupiter.api.Assumptions;

/**
 * The library is built only where gcc is found (build.sh). Elsewhere the tests that need it skip with the reason;
 * in CI ({@code CI=true}), where .ci/run provides gcc, they fail instead, so a broken build cannot pass unseen.
 */
final class NativeAvailability {
    private NativeAvailability() {
    }

    static void assumeLoaded() {
        String reason = NativeLibrary.unavailableReason();
        if (reason != null && !"true".equalsIgnoreCase(System.getenv("CI"))) {
            Assumptions.abort("the native library is not available here: " + reason);
        }
    }
}
