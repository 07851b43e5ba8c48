package io.bitplane.server;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A model may write anything: whatever the reply and however it is cut into tokens, finding its calls never throws,
 * what a stream releases never shrinks nor passes the reply's end, the content streamed begins the whole reply's,
 * and a reply without calls is its own content.
 */
class ToolCallParserFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyReply(FuzzedDataProvider data) {
        ToolCallParser parser = new ToolCallParser(data.pickValue(ToolCallParser.Format.values()),
                Set.of("f", "get_time"));
        String reply = data.consumeRemainingAsString();
        int sent = 0;
        StringBuilder streamed = new StringBuilder();
        for (int at = 1; at <= reply.length(); at += 1 + at % 3) {
            int ready = parser.releasable(reply.substring(0, at));
            assertTrue(ready >= 0 && ready <= at, () -> ready + " of " + reply);
            if (ready > sent) {
                streamed.append(reply, sent, ready);
                sent = ready;
            }
        }
        ToolCallParser.Parsed whole = parser.parse(reply);
        String content = whole.content() == null ? "" : whole.content();
        assertTrue(content.startsWith(streamed.toString()), reply);
        if (whole.calls().isEmpty()) {
            assertEquals(reply, whole.content(), "a reply without calls is its own content");
        } else {
            assertEquals(content.stripTrailing(), content, reply);
            whole.calls().forEach(c -> assertTrue(c.arguments().startsWith("{"), c::toString));
        }
    }
}
