package io.bitplane.cli;

/**
 * {@code --device N}: the device backends (OpenCL) read their device number from the system property
 * {@code bitplane.opencl.device}, so that the backend lookup stays one name; the option sets it.
 */
final class DeviceOption {
    private DeviceOption() {
    }

    static void apply(Integer device) {
        if (device == null) {
            return;
        }
        if (device < 0) {
            throw new IllegalArgumentException("--device must be >= 0, not " + device);
        }
        System.setProperty("bitplane.opencl.device", Integer.toString(device));
    }
}
