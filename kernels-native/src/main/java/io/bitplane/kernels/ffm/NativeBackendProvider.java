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

    @Override
    public Backend create(int threads) {
        return new NativeBackend(NativeLibrary.kernels(), threads);
    }
}
