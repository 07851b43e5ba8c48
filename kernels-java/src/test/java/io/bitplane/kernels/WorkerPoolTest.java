package io.bitplane.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerPoolTest {
    @Test
    void everyRowIsRunExactlyOnceForAnyRowCount() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int rows : new int[] {1, 2, 3, 4, 7, 100, 1001}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(rows);
                for (int rep = 0; rep < 50; rep++) {
                    pool.run(rows, (a, b) -> {
                        for (int r = a; r < b; r++) {
                            hits.incrementAndGet(r);
                        }
                    });
                }
                for (int r = 0; r < rows; r++) {
                    assertEquals(50, hits.get(r), "row " + r + " of " + rows);
                }
            }
        }
    }

    /** Not split: the whole range in one call on the calling thread; split: every row once, as {@code run}. */
    @Test
    void runNotSplitIsOneCallHereAndSplitCoversEveryRow() {
        try (WorkerPool pool = new WorkerPool(3)) {
            Thread caller = Thread.currentThread();
            int[] calls = new int[1];
            pool.run(100, (a, b) -> {
                assertEquals(caller, Thread.currentThread());
                assertEquals(0, a);
                assertEquals(100, b);
                calls[0]++;
            }, false);
            assertEquals(1, calls[0]);
            AtomicIntegerArray hits = new AtomicIntegerArray(100);
            pool.run(100, (a, b) -> {
                for (int r = a; r < b; r++) {
                    hits.incrementAndGet(r);
                }
            }, true);
            for (int r = 0; r < 100; r++) {
                assertEquals(1, hits.get(r), "row " + r);
            }
        }
    }

    /**
     * Parts of a job (rows in units of 1, 8 or 32, some partly past their rows) split over threads and run on the
     * caller alone: every unit of every part exactly once, whatever the slices' edges.
     */
    @Test
    void everyUnitOfEveryPartIsRunExactlyOnce() {
        int[][] shapes = {{100, 1}, {37, 8}, {65, 32}, {0, 8}, {1, 32}, {5, 1}};
        for (int threads : new int[] {1, 2, 3, 7}) {
            try (WorkerPool pool = new WorkerPool(threads)) {
                for (boolean split : new boolean[] {true, false}) {
                    AtomicIntegerArray[] hits = new AtomicIntegerArray[shapes.length];
                    WorkerPool.Part[] parts = new WorkerPool.Part[shapes.length];
                    for (int i = 0; i < shapes.length; i++) {
                        AtomicIntegerArray h = new AtomicIntegerArray(Math.ceilDiv(shapes[i][0], shapes[i][1]));
                        hits[i] = h;
                        parts[i] = new WorkerPool.Part(shapes[i][0], shapes[i][1], (a, b) -> {
                            for (int u = a; u < b; u++) {
                                h.incrementAndGet(u);
                            }
                        });
                    }
                    pool.runParts(parts, parts.length, split);
                    for (int i = 0; i < shapes.length; i++) {
                        for (int u = 0; u < hits[i].length(); u++) {
                            assertEquals(1, hits[i].get(u), "threads " + threads + " split " + split + " part " + i
                                    + " unit " + u);
                        }
                    }
                }
            }
        }
        for (int r0 = 0; r0 <= 40; r0++) { // and any slices, not only the pool's: here every cut of 40 rows in two
            int[] hits = new int[Math.ceilDiv(30, 8) + 10];
            WorkerPool.Part[] parts = {new WorkerPool.Part(30, 8, (a, b) -> {
                for (int u = a; u < b; u++) {
                    hits[u]++;
                }
            }), new WorkerPool.Part(10, 1, (a, b) -> {
                for (int u = a; u < b; u++) {
                    hits[4 + u]++;
                }
            })};
            WorkerPool.runSlice(parts, parts.length, 0, r0);
            WorkerPool.runSlice(parts, parts.length, r0, 40);
            for (int u = 0; u < hits.length; u++) {
                assertEquals(1, hits[u], "cut at " + r0 + ", unit " + u);
            }
        }
    }

    /** Idle, the workers wait for the next job parked: they spun 2 ms and parked 1 ms in turn, forever, before. */
    @Test
    void anIdlePoolsWorkersStayParked() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(3)) {
            int[] sum = new int[1];
            pool.run(10, (a, b) -> {
                synchronized (sum) {
                    sum[0] += b - a;
                }
            });
            assertEquals(10, sum[0]);
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!allParked(pool) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            for (int i = 0; i < 20; i++) {
                assertTrue(allParked(pool), java.util.Arrays.toString(pool.workerStates()));
                Thread.sleep(3);
            }
            // And a job after the idle time still runs on every slice.
            AtomicIntegerArray hits = new AtomicIntegerArray(9);
            pool.run(9, (a, b) -> {
                for (int r = a; r < b; r++) {
                    hits.incrementAndGet(r);
                }
            });
            for (int r = 0; r < 9; r++) {
                assertEquals(1, hits.get(r));
            }
        }
    }

    private static boolean allParked(WorkerPool pool) {
        return java.util.Arrays.stream(pool.workerStates()).allMatch(s -> s == Thread.State.WAITING);
    }

    @Test
    void aFailureInAnySliceReachesTheCaller() {
        try (WorkerPool pool = new WorkerPool(2)) {
            assertThrows(IllegalStateException.class, () -> pool.run(10, (a, b) -> {
                if (a > 0) {
                    throw new IllegalStateException("worker slice failed");
                }
            }));
            // The pool still works afterwards.
            int[] sum = new int[1];
            pool.run(1, (a, b) -> sum[0] += b - a);
            assertEquals(1, sum[0]);
        }
    }
}
