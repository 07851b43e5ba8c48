package io.bitplane.kernels.ffm;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Finds, extracts and loads the kernel library once per JVM. The build puts it in this module's jar under
 * {@code native/<os>-<arch>/}; the system property {@code bitplane.native.library} may name a file instead, and
 * {@code bitplane.native.isa=portable|avx2|avx512} caps the implementation at that instruction set (portable: the
 * plain C build; the CPU's best is used where it has less). Loading never throws: it
 * yields either the bound kernels or the reason they are unavailable.
 */
final class NativeLibrary {
    static final String FILE_NAME = "libbitplane_kernels.so";

    /** The kernels, or null with {@link #unavailableReason} set. */
    private static final NativeKernels KERNELS;
    private static final String UNAVAILABLE_REASON;

    static {
        NativeKernels kernels = null;
        String reason = null;
        try {
            kernels = load();
        } catch (IOException | RuntimeException | LinkageError e) {
            reason = e.getMessage() == null ? e.toString() : e.getMessage();
        }
        KERNELS = kernels;
        UNAVAILABLE_REASON = reason;
    }

    private NativeLibrary() {
    }

    /** The loaded kernels, or an exception that says why there are none. */
    static NativeKernels kernels() {
        if (KERNELS == null) {
            throw new IllegalStateException("the native kernels are not available: " + UNAVAILABLE_REASON);
        }
        return KERNELS;
    }

    static String unavailableReason() {
        return UNAVAILABLE_REASON;
    }

    /** The jar's folder for this machine, as build.sh names it. */
    static String platformFolder() {
        String os = System.getProperty("os.name").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch").toLowerCase(Locale.ROOT);
        arch = switch (arch) {
            case "amd64", "x86_64" -> "x86_64";
            case "arm64", "aarch64" -> "aarch64";
            default -> arch;
        };
        return os.replace(" ", "") + "-" + arch;
    }

    private static NativeKernels load() throws IOException {
        Path file = locate();
        SymbolLookup lookup = SymbolLookup.libraryLookup(file, Arena.global());
        NativeKernels kernels = new NativeKernels(lookup);
        int abi = kernels.abiVersion();
        if (abi != NativeKernels.ABI_VERSION) {
            throw new IllegalStateException(file + " has interface version " + abi + ", these bindings need "
                    + NativeKernels.ABI_VERSION + " (a library from another build)");
        }
        String isa = System.getProperty("bitplane.native.isa", "best").toLowerCase(Locale.ROOT);
        int wanted = switch (isa) {
            case "best" -> kernels.bestIsa();
            case "portable" -> NativeKernels.ISA_PORTABLE;
            case "avx2" -> NativeKernels.ISA_AVX2;
            case "avx512" -> NativeKernels.ISA_AVX512;
            default -> throw new IllegalStateException("-Dbitplane.native.isa=" + isa
                    + " is not one of best, portable, avx2, avx512");
        };
        kernels.selectIsa(wanted);
        return kernels;
    }

    private static Path locate() throws IOException {
        String explicit = System.getProperty("bitplane.native.library");
        if (explicit != null) {
            Path p = Path.of(explicit);
            if (!Files.isRegularFile(p)) {
                throw new IOException("-Dbitplane.native.library=" + explicit + " is not a file");
            }
            return p;
        }
        String resource = "/native/" + platformFolder() + "/" + FILE_NAME;
        try (InputStream in = NativeLibrary.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IOException("no native library for " + platformFolder() + " in the bitplane-kernels-native"
                        + " jar (" + resource + "; it is built only where gcc was found)");
            }
            // A private copy per JVM: a library cannot be loaded from inside a jar, and a shared path could be
            // replaced under a running process.
            Path file = Files.createTempFile("bitplane-kernels-", ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        }
    }

    /** Which implementation runs, for logs. */
    static String isaName(int isa) {
        return switch (isa) {
            case NativeKernels.ISA_AVX512 -> "AVX-512 VNNI";
            case NativeKernels.ISA_AVX2 -> "AVX2+FMA";
            default -> "portable C";
        };
    }
}
