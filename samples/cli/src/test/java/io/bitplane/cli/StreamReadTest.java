package io.bitplane.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The roofline's bandwidth from the measurements beside a run. */
class StreamReadTest {

    /** The higher of before and after, whichever came first: the machine could give at least that in the run. */
    @Test
    void aRunTakesTheHigherOfTheBandwidthsMeasuredBesideIt() {
        assertEquals(82e9, StreamRead.ofRun(46e9, 82e9));
        assertEquals(82e9, StreamRead.ofRun(82e9, 46e9));
    }
}
