package io.bitplane.runtime;

import io.bitplane.format.ModelConfig;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;

/**
 * The keys and values one sequence has seen: per layer [capacity][kvDim] on the backend. Kept apart from the
 * decoder's scratch so that one decoder step can serve the tokens of several sequences, each with its own cache
 * (continuous batching).
 */
final class KvCache {
    final int capacity;
    final Buffer[] keys;
    final Buffer[] values;

    KvCache(ModelConfig c, Backend backend, int capacity) {
        this.capacity = capacity;
        keys = new Buffer[c.nLayers()];
        values = new Buffer[c.nLayers()];
        for (int l = 0; l < c.nLayers(); l++) {
            keys[l] = backend.allocate(capacity * c.kvDim());
            values[l] = backend.allocate(capacity * c.kvDim());
        }
    }

    long bytes(ModelConfig c) {
        return 2L * c.nLayers() * capacity * c.kvDim() * Float.BYTES;
    }
}
