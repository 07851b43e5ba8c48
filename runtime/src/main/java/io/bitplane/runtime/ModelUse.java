package io.bitplane.runtime;

import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The forward passes running on a model, so that {@link Model#close()} waits for them to end before it frees what
 * they read (the backend's tiles and copies, the mapped file), and passes that would start after fail with a message
 * that says why. Without it a session generating on another thread ran on into freed weights and failed deep in a
 * kernel ("Already closed"; SessionTest), and a native call holding a weight's segment would have made the close
 * itself fail (a shared arena does not close while a call holds one of its segments).
 *
 * <p>A read lock a pass (one per token or batch of tokens: tens of nanoseconds against a step's microseconds to
 * milliseconds), the write lock for the close; a close waiting keeps new passes from starting.
 */
final class ModelUse {
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    /** Written under the write lock; volatile for {@link #checkOpen()}, which takes no lock. */
    private volatile boolean closed;

    /** Marks a pass running; throws if the model is closed. Pair with {@link #exit()}. */
    void enter() {
        lock.readLock().lock();
        if (closed) {
            lock.readLock().unlock();
            throw closedModel();
        }
    }

    /** Throws if the model is closed (or its close has begun). */
    void checkOpen() {
        if (closed) {
            throw closedModel();
        }
    }

    private static IllegalStateException closedModel() {
        return new IllegalStateException("model is closed");
    }

    void exit() {
        lock.readLock().unlock();
    }

    /**
     * Waits for the passes running to end, then runs {@code release} while none runs and none can start; later
     * passes fail. Runs it once, however often it is called. Must not be called from inside a pass.
     */
    void close(Runnable release) {
        lock.writeLock().lock();
        try {
            if (!closed) {
                closed = true;
                release.run();
            }
        } finally {
            lock.writeLock().unlock();
        }
    }
}
