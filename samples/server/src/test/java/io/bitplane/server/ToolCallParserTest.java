package io.bitplane.server;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Function calls found in replies as Qwen (tagged) and Llama 3 (JSON) write them, whole and streamed. */
class ToolCallParserTest {
    static final Set<String> FUNCTIONS = Set.of("get_weather", "get_time");
    static final ToolCallParser TAGGED = new ToolCallParser(ToolCallParser.Format.TAGGED, FUNCTIONS);
    static final ToolCallParser JSON = new ToolCallParser(ToolCallParser.Format.JSON, FUNCTIONS);

    private static void assertCalls(List<ToolCall> calls, String... nameThenArguments) {
        assertEquals(nameThenArguments.length / 2, calls.size(), calls.toString());
        for (int i = 0; i < calls.size(); i++) {
            assertEquals(nameThenArguments[2 * i], calls.get(i).name());
            assertEquals(nameThenArguments[2 * i + 1], calls.get(i).arguments());
            assertTrue(calls.get(i).id().matches("call_[0-9a-f]{24}"), calls.get(i).id());
        }
    }

    @Test
    void qwenBlocksAreCallsAndTheTextAroundThemContent() {
        var p = TAGGED.parse("<think>\nParis.\n</think>\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                + "{\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
                + "\"{\\\"zone\\\": \\\"CET\\\"}\"}\n</tool_call>");
        assertEquals("<think>\nParis.\n</think>", p.content());
        assertCalls(p.calls(), "get_weather", "{\"city\":\"Paris\"}", "get_time", "{\"zone\":\"CET\"}");
        var only = TAGGED.parse("<tool_call>{\"name\": \"get_time\"}</tool_call>\n");
        assertNull(only.content());
        assertCalls(only.calls(), "get_time", "{}");
        var unclosed = TAGGED.parse("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n");
        assertCalls(unclosed.calls(), "get_time", "{}");
    }

    /** What is not a call of a known function with object arguments stays in the content, as the model wrote it. */
    @Test
    void blocksThatAreNotCallsStayText() {
        for (String reply : List.of("Plain <b>text</b>.",
                "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>",
                "<tool_call>{\"name\": \"get_time\", \"arguments\": [1]}</tool_call>", "<tool_call>{oops</tool_call>",
                "<tool_call>\"get_time\"</tool_call>", "<tool_call>", "")) {
            var p = TAGGED.parse(reply);
            assertEquals(reply, p.content(), reply);
            assertEquals(List.of(), p.calls(), reply);
        }
        var mixed = TAGGED.parse("a<tool_call>{bad}</tool_call>b<tool_call>{\"name\": \"get_time\"}</tool_call>c ");
        assertEquals("a<tool_call>{bad}</tool_call>bc", mixed.content());
        assertCalls(mixed.calls(), "get_time", "{}");
    }

    @Test
    void llama3RepliesThatAreJsonAreCalls() {
        assertCalls(JSON.parse("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}").calls(),
                "get_weather", "{\"city\":\"Paris\"}");
        assertCalls(JSON.parse(" {\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"get_weather\", "
                + "\"parameters\": {\"city\": \"Oslo\"}}\n").calls(), "get_time", "{}", "get_weather",
                "{\"city\":\"Oslo\"}");
        assertCalls(JSON.parse("```json\n[{\"name\": \"get_time\", \"arguments\": {}}]\n```").calls(),
                "get_time", "{}");
        assertCalls(JSON.parse("{\"tool_calls\": [{\"function\": {\"name\": \"get_time\", \"arguments\": \"{}\"}}]}")
                .calls(), "get_time", "{}");
        assertNull(JSON.parse("{\"tool_call\": {\"name\": \"get_time\", \"arguments\": {}}}").content());
        for (String reply : List.of("Call {\"name\": \"get_time\", \"parameters\": {}}",
                "{\"name\": \"get_time\", \"parameters\": {}} and more", "{\"name\": \"nope\", \"parameters\": {}}",
                "{\"name\": \"get_time\", \"parameters\": {}}; {\"name\": \"nope\"}", "{\"city\": \"Paris\"}", "[]",
                "{\"name\": \"get_time\"", "{}")) {
            var p = JSON.parse(reply);
            assertEquals(reply, p.content(), reply);
            assertEquals(List.of(), p.calls(), reply);
        }
    }

    @Test
    void textThatMayBeginACallIsHeldBack() {
        assertEquals(5, TAGGED.releasable("Hello <tool_"));
        assertEquals(5, TAGGED.releasable("Hello <tool_call>{\"name\""));
        assertEquals(6, TAGGED.releasable("Hello!\n\n"));
        assertEquals(8, TAGGED.releasable("a < b, c"));
        assertEquals(0, TAGGED.releasable("\n"));
        assertEquals(0, JSON.releasable("  {\"na"));
        assertEquals(0, JSON.releasable("```"));
        assertEquals(0, JSON.releasable(" \n"));
        assertEquals(9, JSON.releasable(" Sure: {x"));
    }

    /**
     * A streamed reply is sent as the content released while it runs and, at its end, the content parse() gives
     * beyond that: for random replies cut into random tokens, that is exactly parse()'s content, and what was
     * released never shrinks.
     */
    @Test
    void streamedContentIsTheWholeReplysContent() {
        String[] pieces = {"Sure", " ", "\n", "<", "<tool_call>", "</tool_call>", "{\"name\": \"get_time\"}",
                "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}", "{", "}", ";", "<think>x</think>",
                "```", "text", "[", "]"};
        Random rnd = new Random(7);
        for (int round = 0; round < 20_000; round++) {
            StringBuilder reply = new StringBuilder();
            for (int n = rnd.nextInt(8); n >= 0; n--) {
                reply.append(pieces[rnd.nextInt(pieces.length)]);
            }
            for (ToolCallParser parser : List.of(TAGGED, JSON)) {
                StringBuilder streamed = new StringBuilder();
                int sent = 0;
                for (int at = 0; at < reply.length(); ) {
                    at = Math.min(reply.length(), at + 1 + rnd.nextInt(4));
                    int ready = parser.releasable(reply.substring(0, at));
                    if (ready > sent) {
                        streamed.append(reply, sent, ready);
                        sent = ready;
                    }
                }
                var whole = parser.parse(reply.toString());
                String content = whole.content() == null ? "" : whole.content();
                assertTrue(content.startsWith(streamed.toString()), () -> reply + " streamed " + streamed);
                assertEquals(content, streamed + content.substring(sent), reply.toString());
            }
        }
    }
}
