package io.bitplane.cli;

import io.bitplane.kernels.Backends;
import picocli.CommandLine.Command;

import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code bitplane devices}: the devices each backend can run on (OpenCL platforms and devices with their memory and
 * compute units), numbered as {@code --device N} counts them. Exits 1 when no backend has a device to offer.
 */
@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "List the devices of the device backends (OpenCL), for --backend opencl --device N.")
final class DevicesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        Map<String, List<String>> all = Backends.devices();
        if (all.isEmpty()) {
            System.err.println("bitplane devices: no device backend is on the class path");
            return 1;
        }
        boolean any = false;
        for (Map.Entry<String, List<String>> e : all.entrySet()) {
            System.out.println(e.getKey() + ":");
            for (String line : e.getValue()) {
                System.out.println("  " + line);
                any |= !line.startsWith("unavailable: ");
            }
        }
        return any ? 0 : 1;
    }
}
