package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The conformance suite on the native backend with every product in C, on every tensor as the file lays it out: by
 * default the backend hands products with float activations over tiled weights (binary, ternary, INT4), and INT4 x INT8
 * and INT8 x INT8 outside the group lanes, INT8 or binary activations over groups that are not a multiple of 32, and
 * BINARY x binary in groups, to the Java backend, and re-lays some tensors at upload (BINARY into lookup tiles, TERNARY
 * and INT4 planes into packed codes), so the C kernels for those run only where the Java backend has no tiles (no
 * Vector API) or the tensor is not re-laid. {@code -Dbitplane.native.floatProducts=native}, {@code
 * -Dbitplane.native.int4Products=native}, {@code -Dbitplane.native.int8Products=native}, {@code
 * -Dbitplane.native.oddGroupProducts=native}, {@code -Dbitplane.native.xnorGroupProducts=native} and {@code
 * -Dbitplane.native.repack=off} reach them, and this holds them to the oracle as {@link NativeBackendConformanceTest}
 * does the default.
 */
class NativeFloatKernelsConformanceTest extends BackendConformance {
    @Override
    protected Backend createBackend() {
        NativeAvailability.assumeLoaded();
        String products = System.getProperty("bitplane.native.floatProducts");
        String int4 = System.getProperty("bitplane.native.int4Products");
        String int8 = System.getProperty("bitplane.native.int8Products");
        String oddGroups = System.getProperty("bitplane.native.oddGroupProducts");
        String xnorGroups = System.getProperty("bitplane.native.xnorGroupProducts");
        String repack = System.getProperty("bitplane.native.repack");
        System.setProperty("bitplane.native.floatProducts", "native");
        System.setProperty("bitplane.native.oddGroupProducts", "native");
        System.setProperty("bitplane.native.int4Products", "native");
        System.setProperty("bitplane.native.int8Products", "native");
        System.setProperty("bitplane.native.xnorGroupProducts", "native");
        System.setProperty("bitplane.native.repack", "off");
        try {
            Backend b = Backends.create("native", 2);
            assertFalse(b.description().contains("float-activation products"), b.description());
            assertFalse(b.description().contains("INT4 x INT8"), b.description());
            assertFalse(b.description().contains("INT8 x INT8"), b.description());
            assertFalse(b.description().contains("not a multiple of 32"), b.description());
            assertFalse(b.description().contains("binary x binary"), b.description());
            return b;
        } finally {
            restore("bitplane.native.floatProducts", products);
            restore("bitplane.native.int4Products", int4);
            restore("bitplane.native.int8Products", int8);
            restore("bitplane.native.oddGroupProducts", oddGroups);
            restore("bitplane.native.xnorGroupProducts", xnorGroups);
            restore("bitplane.native.repack", repack);
        }
    }

    private static void restore(String key, String value) {
        if (value == null) {
            System.clearProperty(key);
        } else {
            System.setProperty(key, value);
        }
    }
}
