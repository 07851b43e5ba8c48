package io.bitplane.kernels.panama;

import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The per-token tables of the lookup-table kernels, and where those kernels may run (at either vector width). */
class LookupTablesTest {

    /** Every entry against its definition: the chunk's codes 0-4, 5-9 or 10-15 summed over the bits of the index. */
    @ParameterizedTest(name = "K = {0}")
    @ValueSource(ints = {1, 5, 15, 16, 17, 100, 1030})
    void tablesHoldTheSubsetSumsOfEachChunk(int k) {
        TensorSpec spec = TensorSpec.of("w", Encoding.TERNARY, 0, 1, k); // only K matters to the tables
        Random rnd = new Random(k);
        int offset = 7; // codes and tables both start inside their arrays
        short[] q = new short[offset + k];
        for (int i = 0; i < k; i++) {
            q[offset + i] = (short) (rnd.nextInt(255) - 127);
        }
        short[] tables = new short[3 + LookupTables.tableLength(spec)];
        LookupTables.buildTables(spec, q, offset, tables, 3);
        int chunks = LookupTables.chunks(spec);
        assertEquals(128 * chunks, LookupTables.tableLength(spec));
        short[] expected = new short[tables.length];
        int[] first = {0, 5, 10};
        int[] width = {5, 5, 6};
        int[] at = {0, 32, 64};
        for (int c = 0; c < chunks; c++) {
            for (int t = 0; t < 3; t++) {
                for (int m = 0; m < 1 << width[t]; m++) {
                    int sum = 0;
                    for (int i = 0; i < width[t]; i++) {
                        int value = 16 * c + first[t] + i;
                        sum += (m >>> i & 1) == 1 && value < k ? q[offset + value] : 0;
                    }
                    expected[3 + 128 * c + at[t] + m] = (short) sum;
                }
            }
        }
        assertArrayEquals(expected, tables);
    }

    /** The kernels need 32 short lanes: chosen where the preferred vectors have them, refused elsewhere. */
    @Test
    void theKernelsRunOnlyWithVectorsOf32ShortLanes() {
        assertEquals(TileRows.ROWS == 32, LookupTables.POSSIBLE);
        String before = System.getProperty(LookupTables.PROPERTY);
        try {
            System.setProperty(LookupTables.PROPERTY, "on");
            assertEquals(LookupTables.POSSIBLE, LookupTables.worthUsing());
            System.setProperty(LookupTables.PROPERTY, "off");
            assertFalse(LookupTables.worthUsing());
        } finally {
            if (before == null) {
                System.clearProperty(LookupTables.PROPERTY);
            } else {
                System.setProperty(LookupTables.PROPERTY, before);
            }
        }
        if (LookupTables.POSSIBLE) {
            new PanamaBackend(1, true).close();
        } else {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new PanamaBackend(1, true));
            assertTrue(e.getMessage().contains("512-bit vectors"), e.getMessage());
        }
    }
}
