package io.bitplane.kernels;

/**
 * A backend found at run time (java.util.ServiceLoader): the native and OpenCL modules register one each, so that
 * the runtime works without them and never names them.
 */
public interface BackendProvider {
    String name();

    /**
     * Creates the backend with {@code threads} threads for its kernels (where it has threads), or throws with a
     * message that says why it cannot run here.
     */
    Backend create(int threads);

    /**
     * Whether "auto" should pick this backend when it starts: true for backends that are faster than the Java
     * kernels wherever they load (native), false for those that depend on the device (OpenCL).
     */
    default boolean automatic() {
        return false;
    }

    /**
     * One line per device this backend can run on, numbered as its device option counts them ({@code bitplane
     * devices}); empty for backends without a choice of device. Throws {@link IllegalStateException} saying why
     * when the backend cannot look (no driver).
     */
    default java.util.List<String> devices() {
        return java.util.List.of();
    }

    /**
     * A read of memory as this backend's own code streams weights, for {@code bitplane bench}'s roofline: reads every
     * byte of a native segment once and returns a sum of them (so that no read can be dropped). Empty where the
     * backend has none (the default) or cannot load; the native library's loop prefetches, which Java cannot.
     */
    default java.util.Optional<java.util.function.ToLongFunction<java.lang.foreign.MemorySegment>> streamReader() {
        return java.util.Optional.empty();
    }
}
