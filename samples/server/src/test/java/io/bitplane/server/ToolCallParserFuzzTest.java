package io.bitplane.server;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A model may write anything: whatever the reply and however it is cut into tokens, finding its calls never throws,
 * what a stream releases never shrinks nor passes the reply's end, the content streamed begins the whole reply's,
 * a reply without calls is its own content, and the deltas of its thinking and content add up to the whole's.
 */
class ToolCallParserFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyReply(FuzzedDataProvider data) {
        ToolCallParser parser = new ToolCallParser(data.pickValue(ToolCallParser.Format.values()),
                Set.of("f", "get_time"));
        boolean startsThinking = data.consumeBoolean();
        String reply = data.consumeRemainingAsString();
        int sent = 0;
        StringBuilder streamed = new StringBuilder();
        AssistantReply split = new AssistantReply(true, startsThinking, parser, true);
        StringBuilder reasoning = new StringBuilder();
        StringBuilder content = new StringBuilder();
        for (int from = 0, at = 1; at <= reply.length(); from = at, at += 1 + at % 3) {
            int ready = parser.releasable(reply.substring(0, at));
            assertTrue(ready >= 0 && ready <= at, () -> ready + " of " + reply);
            if (ready > sent) {
                streamed.append(reply, sent, ready);
                sent = ready;
            }
            AssistantReply.Delta d = split.next(reply.substring(from, at));
            reasoning.append(d.reasoning());
            content.append(d.content());
        }
        ToolCallParser.Parsed whole = parser.parse(reply);
        String wholeContent = whole.content() == null ? "" : whole.content();
        assertTrue(wholeContent.startsWith(streamed.toString()), reply);
        if (whole.calls().isEmpty()) {
            assertEquals(reply, whole.content(), "a reply without calls is its own content");
        } else {
            assertEquals(wholeContent.stripTrailing(), wholeContent, reply);
            whole.calls().forEach(c -> assertTrue(c.arguments().startsWith("{"), c::toString));
        }
        AssistantReply.Delta rest = split.remainder();
        AssistantReply.Whole parts = split.whole();
        assertEquals(parts.reasoning() == null ? "" : parts.reasoning(), reasoning + rest.reasoning(), reply);
        assertEquals(parts.content() == null ? "" : parts.content(), content + rest.content(), reply);
    }
}
