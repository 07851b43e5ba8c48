package io.bitplane.example;

import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The example runs as a user would run it, and tells a story. */
class StoryTellerTest {
    @Test
    void tellsAStory() throws Exception {
        PrintStream old = System.out;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            StoryTeller.main(new String[] {SharedData.stories260K().toString(), "Once upon a time"});
        } finally {
            System.setOut(old);
        }
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.startsWith("Once upon a time"), text);
        assertTrue(text.length() > 200, text);
        assertTrue(text.contains(" tokens/s, "), text);
    }
}
