package io.bitplane.opencl;

import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;
import org.lwjgl.system.MemoryUtil;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import static org.lwjgl.opencl.CL10.*;

/**
 * Builds an OpenCL program for one device, keeping the compiled binary on disk so that the next start skips the
 * compiler (seconds on PoCL). The key hashes everything that changes the binary: platform, device, driver
 * version, build options and source. A binary the driver refuses is rebuilt from source and replaced.
 * <p>Folder: {@code -Dbitplane.opencl.cache=DIR}, else {@code $XDG_CACHE_HOME/bitplane/opencl}, else
 * {@code ~/.cache/bitplane/opencl}; a folder that cannot be written only costs the compile.
 */
final class ProgramCache {
    private ProgramCache() {
    }

    /** A built program; {@code fromCache} says whether the compiler was skipped. */
    record Built(long program, boolean fromCache) {
    }

    static Built build(long context, OpenClDevice device, String source, String options) {
        Path file = folder().resolve(key(device, source, options) + ".bin");
        if (Files.isReadable(file)) {
            try {
                long program = fromBinary(context, device, Files.readAllBytes(file), options);
                if (program != 0) {
                    return new Built(program, true);
                }
            } catch (IOException e) {
                // unreadable cache entry: rebuild below
            }
        }
        long program = fromSource(context, device, source, options);
        store(program, file);
        return new Built(program, false);
    }

    static Path folder() {
        String configured = System.getProperty("bitplane.opencl.cache");
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured);
        }
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("bitplane").resolve("opencl");
    }

    static String key(OpenClDevice device, String source, String options) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (String part : new String[] {device.platformName(), device.name(), device.version(),
                device.driverVersion(), options, source}) {
                sha.update(part.getBytes(StandardCharsets.UTF_8));
                sha.update((byte) 0);
            }
            return HexFormat.of().formatHex(sha.digest()).substring(0, 32);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long fromSource(long context, OpenClDevice device, String source, String options) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            long program = clCreateProgramWithSource(context, source, err);
            OpenClException.check(err.get(0), "clCreateProgramWithSource");
            int status = compile(program, device, options);
            if (status != 0) {
                String log = buildLog(program, device.id());
                clReleaseProgram(program);
                throw new OpenClException("the OpenCL kernels failed to build on " + device.name() + " ("
                        + OpenClException.errorName(status) + "); build log:\n" + log, status);
            }
            return program;
        }
    }

    /** clBuildProgram, which starts the driver's compiler: it may replace the JVM's signal handlers. */
    private static int compile(long program, OpenClDevice device, String options) {
        return JvmSignalHandlers.keptAcross(() -> clBuildProgram(program, device.id(), options, null, 0));
    }

    /** The program from a cached binary, or 0 when the driver refuses it. */
    private static long fromBinary(long context, OpenClDevice device, byte[] binary, String options) {
        ByteBuffer native_ = MemoryUtil.memAlloc(binary.length);
        try (MemoryStack stack = MemoryStack.stackPush()) {
            native_.put(binary).flip();
            IntBuffer status = stack.mallocInt(1);
            IntBuffer err = stack.mallocInt(1);
            long program = clCreateProgramWithBinary(context, stack.pointers(device.id()), native_, status, err);
            if (err.get(0) != 0 || status.get(0) != 0) {
                if (program != 0) {
                    clReleaseProgram(program);
                }
                return 0;
            }
            if (compile(program, device, options) != 0) {
                clReleaseProgram(program);
                return 0;
            }
            return program;
        } finally {
            MemoryUtil.memFree(native_);
        }
    }

    private static void store(long program, Path file) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer sizes = stack.mallocPointer(1);
            if (clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizes, null) != 0 || sizes.get(0) <= 0) {
                return;
            }
            ByteBuffer binary = MemoryUtil.memAlloc((int) sizes.get(0));
            try {
                PointerBuffer pointers = stack.pointers(binary);
                if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, pointers, null) != 0) {
                    return;
                }
                byte[] bytes = new byte[binary.remaining()];
                binary.get(bytes);
                Files.createDirectories(file.getParent());
                Path tmp = Files.createTempFile(file.getParent(), "program", ".tmp");
                Files.write(tmp, bytes);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException | RuntimeException e) {
                // the cache is an optimization: a read-only home only costs the compile next time
            } finally {
                MemoryUtil.memFree(binary);
            }
        }
    }

    private static String buildLog(long program, long device) {
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer size = stack.mallocPointer(1);
            clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, (ByteBuffer) null, size);
            ByteBuffer log = MemoryUtil.memAlloc((int) Math.max(1, size.get(0)));
            try {
                clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, log, null);
                return MemoryUtil.memUTF8Safe(log).trim();
            } finally {
                MemoryUtil.memFree(log);
            }
        }
    }
}
