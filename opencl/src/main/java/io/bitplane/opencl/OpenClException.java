package io.bitplane.opencl;

/**
 * An OpenCL call failed: the message names the call, the error code and, for a kernel build, the build log. An
 * {@link IllegalStateException} so that {@link io.bitplane.kernels.Backends} reports it as "cannot run here".
 */
public final class OpenClException extends IllegalStateException {
    public final int code;

    public OpenClException(String message, int code) {
        super(message);
        this.code = code;
    }

    /** Throws when {@code err} is not CL_SUCCESS, naming {@code what} failed. */
    static void check(int err, String what) {
        if (err != 0) {
            throw new OpenClException(what + " failed: " + errorName(err), err);
        }
    }

    /** The symbolic name of an OpenCL error code (the common ones), else the number. */
    static String errorName(int err) {
        return switch (err) {
            case -1 -> "CL_DEVICE_NOT_FOUND";
            case -2 -> "CL_DEVICE_NOT_AVAILABLE";
            case -3 -> "CL_COMPILER_NOT_AVAILABLE";
            case -4 -> "CL_MEM_OBJECT_ALLOCATION_FAILURE";
            case -5 -> "CL_OUT_OF_RESOURCES";
            case -6 -> "CL_OUT_OF_HOST_MEMORY";
            case -11 -> "CL_BUILD_PROGRAM_FAILURE";
            case -30 -> "CL_INVALID_VALUE";
            case -33 -> "CL_INVALID_DEVICE";
            case -34 -> "CL_INVALID_CONTEXT";
            case -36 -> "CL_INVALID_COMMAND_QUEUE";
            case -38 -> "CL_INVALID_MEM_OBJECT";
            case -42 -> "CL_INVALID_BINARY";
            case -44 -> "CL_INVALID_PROGRAM";
            case -46 -> "CL_INVALID_KERNEL_NAME";
            case -48 -> "CL_INVALID_KERNEL";
            case -49 -> "CL_INVALID_ARG_INDEX";
            case -50 -> "CL_INVALID_ARG_VALUE";
            case -51 -> "CL_INVALID_ARG_SIZE";
            case -52 -> "CL_INVALID_KERNEL_ARGS";
            case -54 -> "CL_INVALID_WORK_GROUP_SIZE";
            case -61 -> "CL_INVALID_BUFFER_SIZE";
            case -1001 -> "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform is installed)";
            default -> "error " + err;
        };
    }
}
