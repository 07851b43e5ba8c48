package io.bitplane.opencl;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.lwjgl.system.MemoryStack;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicBoolean;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.lwjgl.opencl.CL10.CL_CONTEXT_PLATFORM;
import static org.lwjgl.opencl.CL10.clCreateContext;
import static org.lwjgl.opencl.CL10.clReleaseContext;
import static org.lwjgl.opencl.CL10.clReleaseProgram;

/**
 * PoCL replaces the JVM's signal handlers when its platform starts (see {@link JvmSignalHandlers}); once it has
 * started and compiled, the JVM's must be the ones in place, and Java arithmetic must behave. In a JVM of its own
 * (tag own-jvm), so that the driver starts here, with threads running and collections stopping them, as in the
 * command line's tests that died now and then without the fix.
 */
@Tag("own-jvm")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class JvmSignalHandlersTest {
    private static final Map<Integer, String> SIGNALS_THE_JVM_TAKES = Map.of(4, "SIGILL", 7, "SIGBUS", 8, "SIGFPE",
            11, "SIGSEGV", 12, "SIGUSR2");

    /**
     * Without the fix this JVM died in one of the first three rounds, three runs of three, with "Segmentation
     * fault" and no hs_err file. A collection stops every running thread at a safepoint poll, a SIGSEGV the JVM
     * expects; most likely LLVM's handler, installed with SA_RESETHAND, took the first, and the signal's default
     * action ended the process at the next.
     */
    @Test
    @Order(1)
    void theJvmOutlivesCollectionsWhileTheDriverStartsAndCompiles() throws Exception {
        AtomicBoolean stop = new AtomicBoolean();
        List<Thread> busy = new ArrayList<>();
        for (int t = 0; t < 3; t++) {
            busy.add(Thread.ofPlatform().start(() -> {
                long x = System.nanoTime();
                while (!stop.get()) {
                    for (int i = 0; i < 1000; i++) {
                        x += i * 31L ^ (x >>> 3);
                    }
                    sink = x;
                }
            }));
        }
        try {
            Thread.sleep(1000); // until the loops above run compiled, where a safepoint poll is a memory fault
            OpenClAvailability.assumePlatform();
            OpenClDevice device = OpenClDevice.pick(0);
            try (MemoryStack stack = MemoryStack.stackPush()) {
                IntBuffer err = stack.mallocInt(1);
                long context = clCreateContext(stack.pointers(CL_CONTEXT_PLATFORM, device.platform(), 0),
                        device.id(), null, 0, err);
                OpenClException.check(err.get(0), "clCreateContext");
                for (int round = 0; round < 8; round++) {
                    String source = "kernel void add(global int *a) { a[get_global_id(0)] += " + System.nanoTime()
                            + "; }"; // new each round: compiled, not found in a cache
                    clReleaseProgram(ProgramCache.build(context, device, source, "").program());
                    collectRepeatedly();
                }
                clReleaseContext(context);
            }
        } finally {
            stop.set(true);
            for (Thread t : busy) {
                t.join();
            }
        }
    }

    @Test
    @Order(2)
    void afterTheDriverStartsAndCompilesTheJvmHandlesItsSignals() {
        OpenClAvailability.assumePlatform();
        Map<String, String> expected = new TreeMap<>();
        Map<String, String> found = new TreeMap<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment[] handlers = JvmSignalHandlers.readAll(arena);
            Assumptions.assumeTrue(handlers[11] != null, "signal handlers are read on Linux only");
            SIGNALS_THE_JVM_TAKES.forEach((sig, name) -> {
                expected.put(name, "libjvm.so");
                found.put(name, libraryOf(handlers[sig].get(ValueLayout.ADDRESS, 0)));
            });
        }
        assertEquals(expected, found, "the library each signal's handler is in");
    }

    /** PoCL's SIGFPE handler skipped the trapping division: the loop ran on with made-up quotients. */
    @Test
    @Order(3)
    void anIntegerDivisionByZeroStillThrowsOnceTheDriverIsLoaded() {
        OpenClAvailability.assumePlatform();
        int thrown = 0;
        int rounds = 200_000; // enough for the JIT to compile divide() with its implicit zero check
        for (int i = 0; i < rounds; i++) {
            try {
                divide(i, i % 1000 == 7 ? 0 : 3);
            } catch (ArithmeticException e) {
                thrown++;
            }
        }
        assertEquals(rounds / 1000, thrown, "divisions by zero that threw");
    }

    private static volatile long sink;

    private static void collectRepeatedly() {
        for (int i = 0; i < 20; i++) {
            System.gc();
        }
    }

    private static int divide(int a, int b) {
        return a / b;
    }

    /** The shared library that holds {@code address}, by glibc's dladdr. */
    private static String libraryOf(MemorySegment address) {
        Linker linker = Linker.nativeLinker();
        MethodHandle dladdr = linker.downcallHandle(linker.defaultLookup().find("dladdr").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment info = arena.allocate(32, 8); // Dl_info: file name, base, symbol name, symbol address
            if ((int) dladdr.invokeExact(address, info) == 0) {
                return "no library (" + address + ")";
            }
            String path = info.get(ValueLayout.ADDRESS, 0).reinterpret(4096).getString(0);
            return path.substring(path.lastIndexOf('/') + 1);
        } catch (Throwable e) {
            throw new AssertionError(e);
        }
    }
}
