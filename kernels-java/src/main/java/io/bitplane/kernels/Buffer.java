package io.bitplane.kernels;

/**
 * Activations, scratch space or a KV cache, owned by the backend that allocated it: a CPU backend keeps floats in
 * memory, a device backend keeps them on the device. Only the backend that made a buffer may be given it.
 */
public interface Buffer {
    /** Capacity in floats. */
    int length();
}
