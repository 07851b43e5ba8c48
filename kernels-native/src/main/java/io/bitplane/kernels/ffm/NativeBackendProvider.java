package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendProvider;

/** Registers the native backend with {@link io.bitplane.kernels.Backends} (java.util.ServiceLoader). */
public final class NativeBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "native";
    }

    /** Faster than the Java kernels on every quantized product measured (README, kernels-native). */
    @Override
    public boolean automatic() {
        return true;
    }

    /** bp_stream_read, where the library loads: it prefetches as the native kernels do. */
    @Override
    public java.util.Optional<java.util.function.ToLongFunction<java.lang.foreign.MemorySegment>> streamReader() {
        if (NativeLibrary.unavailableReason() != null) {
            return java.util.Optional.empty();
        }
        NativeKernels kernels = NativeLibrary.kernels();
        return java.util.Optional.of(kernels::streamRead);
    }

    @Override
    public Backend create(int threads) {
        return new NativeBackend(NativeLibrary.kernels(), threads);
    }
}
