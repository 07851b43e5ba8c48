package io.bitplane.server;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** A reply split into thinking, content and calls, given whole or token by token. */
class AssistantReplyTest {
    static final ToolCallParser TAGGED = new ToolCallParser(ToolCallParser.Format.TAGGED, Set.of("get_time"));

    @Test
    void thinkingAtTheStartIsReasoningAndTheRestContent() {
        var w = AssistantReply.of("<think>\nShort one.\n</think>\n\nOnce upon a time.", true, false, null, true);
        assertEquals("Short one.", w.reasoning());
        assertEquals("Once upon a time.", w.content());
        var kept = AssistantReply.of("<think>\nShort one.\n</think>\n\nOnce.", false, false, null, true);
        assertNull(kept.reasoning());
        assertEquals("<think>\nShort one.\n</think>\n\nOnce.", kept.content());
        var notAtStart = AssistantReply.of("So <think>x</think> y", true, false, null, true);
        assertNull(notAtStart.reasoning());
        assertEquals("So <think>x</think> y", notAtStart.content());
    }

    /** A template that opens the thinking itself (the prompt ends with <think>): the reply starts inside it. */
    @Test
    void aReplyMayStartInsideTheThinking() {
        var w = AssistantReply.of("Hm.\n</think>\n\nYes.", true, true, null, true);
        assertEquals("Hm.", w.reasoning());
        assertEquals("Yes.", w.content());
        var cut = AssistantReply.of("Hm, let me", true, true, null, true);  // the token limit came first
        assertEquals("Hm, let me", cut.reasoning());
        assertNull(cut.content());
    }

    @Test
    void callsAfterTheThinkingAreCalls() {
        var w = AssistantReply.of("<think>Time?</think>\n<tool_call>{\"name\": \"get_time\"}</tool_call>"
                + "<tool_call>{\"name\": \"get_time\", \"arguments\": {\"z\": 1}}</tool_call>", true, false, TAGGED,
                false);
        assertEquals("Time?", w.reasoning());
        assertNull(w.content());
        assertEquals(1, w.calls().size(), "parallel_tool_calls false keeps the first");
        assertEquals("{}", w.calls().get(0).arguments());
    }

    @Test
    void textThatMayOpenOrCloseTheThinkingIsHeldBack() {
        AssistantReply r = new AssistantReply(true, false, null, true);
        assertEquals(new AssistantReply.Delta("", ""), r.next("\n<thi"));
        assertEquals(new AssistantReply.Delta("A", ""), r.next("nk>A\n</th"));
        assertEquals(new AssistantReply.Delta("", ""), r.next("ink>\n"));
        assertEquals(new AssistantReply.Delta("", "B"), r.next("B"));
        assertEquals(new AssistantReply.Delta("", ""), r.remainder());
    }

    /**
     * For random replies cut into random tokens, what a stream sends (each token's delta, then the remainder) adds
     * up to the whole reply's reasoning and content, with and without thinking apart and tools.
     */
    @Test
    void deltasAddUpToTheWholeReply() {
        String[] pieces = {"<think>", "</think>", "<", "</", "think", ">", "\n", " ", "Hm", "ok.", "<tool_call>",
                "{\"name\": \"get_time\"}", "</tool_call>", "{", "}"};
        Random rnd = new Random(11);
        for (int round = 0; round < 20_000; round++) {
            StringBuilder reply = new StringBuilder();
            for (int n = rnd.nextInt(9); n >= 0; n--) {
                reply.append(pieces[rnd.nextInt(pieces.length)]);
            }
            boolean split = rnd.nextBoolean();
            boolean starts = rnd.nextBoolean();
            ToolCallParser tools = rnd.nextBoolean() ? TAGGED : null;
            AssistantReply r = new AssistantReply(split, starts, tools, true);
            StringBuilder reasoning = new StringBuilder();
            StringBuilder content = new StringBuilder();
            for (int at = 0; at < reply.length(); ) {
                int next = Math.min(reply.length(), at + 1 + rnd.nextInt(5));
                AssistantReply.Delta d = r.next(reply.substring(at, next));
                reasoning.append(d.reasoning());
                content.append(d.content());
                at = next;
            }
            AssistantReply.Delta rest = r.remainder();
            reasoning.append(rest.reasoning());
            content.append(rest.content());
            var whole = AssistantReply.of(reply.toString(), split, starts, tools, true);
            String where = reply + " split " + split + " starts " + starts + " tools " + (tools != null);
            assertEquals(whole.reasoning() == null ? "" : whole.reasoning(), reasoning.toString(), where);
            assertEquals(whole.content() == null ? "" : whole.content(), content.toString(), where);
        }
    }

    @Test
    void theWholeReplyIsContentWhenNothingIsSplit() {
        for (String reply : List.of("", " ", "<think>", "plain")) {
            assertEquals(reply, AssistantReply.of(reply, false, false, null, true).content());
        }
    }
}
