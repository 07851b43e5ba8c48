package io.bitplane.opencl;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Puts back the JVM's signal handlers that an OpenCL driver replaced during a call.
 *
 * <p>The JVM takes its own signals in normal running: SIGSEGV for safepoint polls and null checks in compiled code,
 * SIGFPE for an integer division by zero (which becomes an {@link ArithmeticException}), SIGUSR2 to suspend
 * threads. PoCL, the CPU driver, replaces them when its platform starts (the first {@code clGetPlatformIDs} of the
 * process): its LLVM installs one crash handler for SIGSEGV, SIGBUS, SIGILL, SIGUSR2, SIGINT and more, with
 * {@code SA_RESETHAND}, and PoCL its own SIGFPE handler, which steps over a division that traps. Seen in this JVM
 * after that call: a compiled {@code a / 0} went on with a made-up quotient instead of throwing, and the process
 * died with "Segmentation fault" and no hs_err file when a collection stopped several running threads (the
 * command line's tests, now and then; {@code JvmSignalHandlersTest}, every time).
 *
 * <p>So the driver calls that start the driver or its compiler run inside {@link #keptAcross}: it reads every
 * handler before the call and restores any the call changed. LLVM registers its handlers once and does not look
 * again until its own handler has run, which it no longer can, so the restored handlers stay. What remains is the
 * window inside the first call. The JDK's {@code libjsig.so} preloaded (HotSpot's signal chaining) is no
 * substitute: with it and without this class, SIGSEGV and SIGFPE stayed the JVM's but SIGUSR2 went to LLVM. Lost:
 * the driver's crash report (a crash in the driver writes the JVM's hs_err file instead) and PoCL's stepping over
 * a kernel's division by zero (the kernels here divide only by bit widths and group sizes the Java side computed).
 *
 * <p>Layout read and written: glibc's {@code struct sigaction} on Linux x86-64 and AArch64, handler at byte 0,
 * 128-byte mask at 8, flags at 136, restorer at 144. On other systems the calls run unguarded.
 */
final class JvmSignalHandlers {
    private static final int STRUCT_BYTES = 152;
    private static final int COMPARED_BYTES = 140; // handler, mask and flags; the restorer is glibc's own
    private static final int LAST_SIGNAL = 31; // 32 and up are glibc's and the real-time signals
    private static final int SIGKILL = 9;
    private static final int SIGSTOP = 19;
    private static final Optional<MethodHandle> SIGACTION = lookUpSigaction();

    private JvmSignalHandlers() {
    }

    /**
     * Runs {@code driverCall}, then restores every signal handler it changed. Calls are serialised: two driver
     * calls at once would each see the other's changes.
     */
    static synchronized <T> T keptAcross(Supplier<T> driverCall) {
        if (SIGACTION.isEmpty()) {
            return driverCall.get();
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment[] before = readAll(arena);
            try {
                return driverCall.get();
            } finally {
                restoreChanged(before, arena);
            }
        }
    }

    /**
     * Every handler now, indexed by signal number: a {@code struct sigaction} each, null where it cannot be read
     * and everywhere on other systems.
     */
    static MemorySegment[] readAll(Arena arena) {
        MemorySegment[] all = new MemorySegment[LAST_SIGNAL + 1];
        if (SIGACTION.isEmpty()) {
            return all;
        }
        for (int sig = 1; sig <= LAST_SIGNAL; sig++) {
            if (sig == SIGKILL || sig == SIGSTOP) {
                continue;
            }
            MemorySegment action = arena.allocate(STRUCT_BYTES, 8);
            if (sigaction(sig, MemorySegment.NULL, action) == 0) {
                all[sig] = action;
            }
        }
        return all;
    }

    private static void restoreChanged(MemorySegment[] before, Arena arena) {
        MemorySegment[] after = readAll(arena);
        for (int sig = 1; sig <= LAST_SIGNAL; sig++) {
            if (before[sig] != null && after[sig] != null && differ(before[sig], after[sig])) {
                sigaction(sig, before[sig], MemorySegment.NULL);
            }
        }
    }

    private static boolean differ(MemorySegment a, MemorySegment b) {
        return MemorySegment.mismatch(a, 0, COMPARED_BYTES, b, 0, COMPARED_BYTES) >= 0;
    }

    private static int sigaction(int sig, MemorySegment action, MemorySegment old) {
        try {
            return (int) SIGACTION.orElseThrow().invokeExact(sig, action, old);
        } catch (Throwable e) {
            throw new IllegalStateException("sigaction(" + sig + ") failed", e);
        }
    }

    private static Optional<MethodHandle> lookUpSigaction() {
        String arch = System.getProperty("os.arch");
        if (!System.getProperty("os.name").equals("Linux") || !(arch.equals("amd64") || arch.equals("aarch64"))) {
            return Optional.empty();
        }
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find("sigaction").map(address -> linker.downcallHandle(address,
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.ADDRESS)));
    }
}
