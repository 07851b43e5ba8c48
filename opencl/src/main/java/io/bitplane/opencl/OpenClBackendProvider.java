package io.bitplane.opencl;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendProvider;

/**
 * Registers the OpenCL backend with {@link io.bitplane.kernels.Backends} (java.util.ServiceLoader). It is never
 * picked by "auto": whether a device beats the CPU kernels depends on the device, so the user asks for it with
 * {@code --backend opencl} (and {@code --device N}, or {@code -Dbitplane.opencl.device=N}).
 */
public final class OpenClBackendProvider implements BackendProvider {
    @Override
    public String name() {
        return "opencl";
    }

    @Override
    public java.util.List<String> devices() {
        return OpenClDevice.all().stream().map(OpenClDevice::describe).toList();
    }

    @Override
    public Backend create(int threads) {
        int index = Integer.getInteger("bitplane.opencl.device", 0);
        return new OpenClBackend(OpenClDevice.pick(index));
    }
}
