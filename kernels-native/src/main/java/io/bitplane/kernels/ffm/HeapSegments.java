package io.bitplane.kernels.ffm;

import java.lang.foreign.MemorySegment;
import java.lang.ref.WeakReference;

/**
 * Heap segments over the arrays a thread passes to C, by identity: {@code MemorySegment.ofArray} is a new object
 * every call, and a decoding step passes the same arrays (activation buffers, codes, the KV cache) again and again.
 * Held weakly: a segment holds its array, and a model's arrays (its KV cache: megabytes a layer) must not outlive
 * the model in a thread's cache. A hit allocates nothing; a miss (a new array, or a segment the collector took)
 * makes one segment, in the place of the oldest. Not thread-safe: one per thread.
 */
final class HeapSegments {
    private final Object[] arrays; // WeakReference<Object>
    private final Object[] segments; // WeakReference<MemorySegment>
    private int next;

    /** Keeps up to {@code size} arrays' segments. */
    HeapSegments(int size) {
        arrays = new Object[size];
        segments = new Object[size];
    }

    /** A segment over all of {@code array} (a float[], byte[], int[] or long[]). */
    @SuppressWarnings("unchecked")
    MemorySegment of(Object array) {
        for (int i = 0; i < arrays.length; i++) {
            if (arrays[i] != null && ((WeakReference<Object>) arrays[i]).get() == array) {
                MemorySegment segment = ((WeakReference<MemorySegment>) segments[i]).get();
                if (segment != null) {
                    return segment;
                }
                arrays[i] = null;
            }
        }
        MemorySegment segment = switch (array) {
            case float[] f -> MemorySegment.ofArray(f);
            case byte[] b -> MemorySegment.ofArray(b);
            case int[] n -> MemorySegment.ofArray(n);
            case long[] l -> MemorySegment.ofArray(l);
            default -> throw new IllegalArgumentException("no heap segment for " + array.getClass());
        };
        arrays[next] = new WeakReference<>(array);
        segments[next] = new WeakReference<>(segment);
        next = (next + 1) % arrays.length;
        return segment;
    }
}
