package io.bitplane.opencl;

import org.lwjgl.PointerBuffer;
import org.lwjgl.opencl.CL;
import org.lwjgl.system.MemoryStack;

import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.lwjgl.opencl.CL10.*;

/**
 * One OpenCL device as {@code bitplane devices} lists it and {@code --device N} picks it: devices of every
 * platform, numbered from 0 in the order the ICD loader reports them.
 */
public record OpenClDevice(int index, long platform, long id, String platformName, String name, String vendor,
                           String version, String driverVersion, String type, long globalMemoryBytes,
                           long maxAllocationBytes, int computeUnits) {

    /** One line for `bitplane devices` and for the backend's description. */
    public String describe() {
        return String.format("%d: %s (%s, %s) on %s: %d MiB, max buffer %d MiB, %d compute units", index, name,
                type, version, platformName, globalMemoryBytes >> 20, maxAllocationBytes >> 20, computeUnits);
    }

    /**
     * Every device of every platform; throws {@link IllegalStateException} saying why when there is none. The
     * first call initialises the driver, which may replace the JVM's signal handlers: they are put back.
     */
    public static List<OpenClDevice> all() {
        loadLibrary();
        return JvmSignalHandlers.keptAcross(OpenClDevice::queryDevices);
    }

    private static List<OpenClDevice> queryDevices() {
        List<OpenClDevice> devices = new ArrayList<>();
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer count = stack.mallocInt(1);
            int err = clGetPlatformIDs(null, count);
            if (err == -1001 || (err == 0 && count.get(0) == 0)) {
                throw new IllegalStateException("no OpenCL platform is installed (on Debian: apt-get install "
                        + "pocl-opencl-icd for the CPU, or your GPU vendor's OpenCL driver)");
            }
            OpenClException.check(err, "clGetPlatformIDs");
            PointerBuffer platforms = stack.mallocPointer(count.get(0));
            OpenClException.check(clGetPlatformIDs(platforms, (IntBuffer) null), "clGetPlatformIDs");
            for (int p = 0; p < platforms.capacity(); p++) {
                long platform = platforms.get(p);
                String platformName = platformString(platform, CL_PLATFORM_NAME);
                IntBuffer n = stack.mallocInt(1);
                err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, null, n);
                if (err == -1 || n.get(0) == 0) {
                    continue; // CL_DEVICE_NOT_FOUND: a platform without devices
                }
                OpenClException.check(err, "clGetDeviceIDs");
                PointerBuffer ids = stack.mallocPointer(n.get(0));
                OpenClException.check(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, ids, (IntBuffer) null),
                        "clGetDeviceIDs");
                for (int d = 0; d < ids.capacity(); d++) {
                    long id = ids.get(d);
                    devices.add(new OpenClDevice(devices.size(), platform, id, platformName,
                            deviceString(id, CL_DEVICE_NAME), deviceString(id, CL_DEVICE_VENDOR),
                            deviceString(id, CL_DEVICE_VERSION), deviceString(id, CL_DRIVER_VERSION),
                            typeName(deviceLong(id, CL_DEVICE_TYPE)), deviceLong(id, CL_DEVICE_GLOBAL_MEM_SIZE),
                            deviceLong(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE), deviceInt(id, CL_DEVICE_MAX_COMPUTE_UNITS)));
                }
            }
        }
        if (devices.isEmpty()) {
            throw new IllegalStateException("no OpenCL device found on any platform");
        }
        return devices;
    }

    /** Device {@code index} of {@link #all()}, or an exception that lists the devices there are. */
    public static OpenClDevice pick(int index) {
        List<OpenClDevice> devices = all();
        if (index < 0 || index >= devices.size()) {
            throw new IllegalArgumentException("no OpenCL device " + index + " (there are " + devices.size()
                    + "; `bitplane devices` lists them)");
        }
        return devices.get(index);
    }

    /** Loads the ICD loader (libOpenCL) once, turning a missing library into a message that says what to install. */
    static void loadLibrary() {
        try {
            CL.getFunctionProvider();
        } catch (LinkageError | RuntimeException e) {
            throw new IllegalStateException("the OpenCL library could not be loaded (" + e.getMessage()
                    + "); on Debian: apt-get install ocl-icd-opencl-dev pocl-opencl-icd", e);
        }
    }

    long info(int param) {
        return deviceLong(id, param);
    }

    private static String platformString(long platform, int param) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer size = stack.mallocPointer(1);
            OpenClException.check(clGetPlatformInfo(platform, param, (ByteBuffer) null, size), "clGetPlatformInfo");
            ByteBuffer value = stack.malloc((int) size.get(0));
            OpenClException.check(clGetPlatformInfo(platform, param, value, null), "clGetPlatformInfo");
            return cString(value);
        }
    }

    private static String deviceString(long device, int param) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer size = stack.mallocPointer(1);
            OpenClException.check(clGetDeviceInfo(device, param, (ByteBuffer) null, size), "clGetDeviceInfo");
            ByteBuffer value = stack.malloc((int) size.get(0));
            OpenClException.check(clGetDeviceInfo(device, param, value, null), "clGetDeviceInfo");
            return cString(value);
        }
    }

    private static long deviceLong(long device, int param) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            LongBuffer value = stack.callocLong(1);
            OpenClException.check(clGetDeviceInfo(device, param, value, null), "clGetDeviceInfo");
            return value.get(0);
        }
    }

    private static int deviceInt(long device, int param) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer value = stack.callocInt(1);
            OpenClException.check(clGetDeviceInfo(device, param, value, null), "clGetDeviceInfo");
            return value.get(0);
        }
    }

    private static String cString(ByteBuffer b) {
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        int end = 0;
        while (end < bytes.length && bytes[end] != 0) {
            end++;
        }
        return new String(bytes, 0, end, StandardCharsets.UTF_8).trim();
    }

    private static String typeName(long type) {
        if ((type & CL_DEVICE_TYPE_GPU) != 0) {
            return "GPU";
        }
        if ((type & CL_DEVICE_TYPE_CPU) != 0) {
            return "CPU";
        }
        if ((type & CL_DEVICE_TYPE_ACCELERATOR) != 0) {
            return "accelerator";
        }
        return "other";
    }
}
