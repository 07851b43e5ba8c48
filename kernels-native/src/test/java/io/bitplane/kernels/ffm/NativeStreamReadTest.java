package io.bitplane.kernels.ffm;

import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import java.util.function.ToLongFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * bp_stream_read (stream_read.c), bench's read of memory, through the reader the native provider offers
 * ({@code Backends.streamReader}), in whatever implementation this run selected (the build runs the tests on the
 * best one, AVX2 and the portable C): every byte read once, whatever the length and the address, the sum the same
 * as Java's of the little-endian words and the tail's bytes.
 */
class NativeStreamReadTest {

    @ParameterizedTest(name = "{0} bytes from offset {1}")
    @CsvSource({"0, 0", "1, 0", "7, 3", "8, 0", "63, 1", "64, 0", "65, 5", "127, 33", "4096, 0", "4103, 17",
        "100000, 63", "1048576, 9"})
    void everyByteIsReadOnce(int bytes, int offset) {
        NativeAvailability.assumeLoaded();
        try (Backend selects = Backends.create("native", 1); Arena arena = Arena.ofConfined()) {
            ToLongFunction<MemorySegment> reader = Backends.streamReader().orElseThrow();
            MemorySegment data = arena.allocate(bytes + offset + 64L, 64).asSlice(offset, bytes);
            byte[] values = new byte[bytes];
            new Random(bytes * 31L + offset).nextBytes(values);
            MemorySegment.copy(values, 0, data, ValueLayout.JAVA_BYTE, 0, bytes);
            assertEquals(javaSum(values), reader.applyAsLong(data), "isa " + NativeLibrary.kernels().isa());
        }
    }

    /** Changing one byte anywhere changes the sum: no byte is skipped (the last, in the tail or in a step). */
    @Test
    void aChangedByteChangesTheSum() {
        NativeAvailability.assumeLoaded();
        try (Backend selects = Backends.create("native", 1); Arena arena = Arena.ofConfined()) {
            ToLongFunction<MemorySegment> reader = Backends.streamReader().orElseThrow();
            MemorySegment data = arena.allocate(4103, 64);
            long before = reader.applyAsLong(data);
            for (long at : new long[] {0, 63, 64, 4095, 4096, 4102}) {
                data.set(ValueLayout.JAVA_BYTE, at, (byte) 1);
                assertEquals(before + (at < 4096 ? 1L << (8 * (at % 8)) : 1), reader.applyAsLong(data), "byte " + at);
                data.set(ValueLayout.JAVA_BYTE, at, (byte) 0);
            }
        }
    }

    /** A heap segment cannot be passed to a call that is not critical: refused in Java, before the call. */
    @Test
    void heapMemoryIsRefused() {
        NativeAvailability.assumeLoaded();
        ToLongFunction<MemorySegment> reader = Backends.streamReader().orElseThrow();
        assertThrows(IllegalArgumentException.class, () -> reader.applyAsLong(MemorySegment.ofArray(new byte[64])));
    }

    private static long javaSum(byte[] values) {
        MemorySegment s = MemorySegment.ofArray(values);
        long sum = 0;
        int i = 0;
        for (; i + 8 <= values.length; i += 8) {
            sum += s.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
        }
        for (; i < values.length; i++) {
            sum += values[i] & 0xff;
        }
        return sum;
    }
}
