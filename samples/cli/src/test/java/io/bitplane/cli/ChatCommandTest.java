package io.bitplane.cli;

import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** bitplane chat as a user holds a conversation: lines in, replies out, the conversation's prompt cached. */
class ChatCommandTest {
    static final Pattern STATS = Pattern.compile("\\((\\d+) tokens, [0-9.]+ tokens/s; prompt (\\d+) tokens, (\\d+) of "
            + "them cached\\)");

    /** Each turn's prompt, generated tokens and cached tokens, from stderr. */
    static List<int[]> turns(String err) {
        Matcher m = STATS.matcher(err);
        List<int[]> out = new java.util.ArrayList<>();
        while (m.find()) {
            out.add(new int[] {Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3))});
        }
        return out;
    }

    /**
     * Two turns, a reset and one more: three replies on stdout (one line each) and nothing else; the second turn's
     * prompt, which repeats the first and its reply, finds them all in the cache; after /reset only the opening.
     */
    @Test
    void turnsReplyAndTheConversationStaysCached() {
        CliRunner.Result r = CliRunner.runWithInput("Tell me about a cat.\nAnd then?\n\n/reset\nHi\n", "chat",
                "--model", SharedData.stories260K().toString(), "--temperature", "0", "--max-tokens", "30");
        assertEquals(0, r.exit(), r.err());
        String[] replies = r.out().split("\n");
        assertEquals(3, replies.length, r.out());
        List<int[]> turns = turns(r.err());
        assertEquals(3, turns.size(), r.err());
        assertEquals(0, turns.get(0)[2]);
        // the first prompt, and every reply token but the last (sampled, never fed back)
        assertEquals(turns.get(0)[1] + turns.get(0)[0] - 1, turns.get(1)[2], r.err());
        assertTrue(turns.get(2)[2] < turns.get(0)[1], r.err());
        assertTrue(r.err().contains("the default chat template") && r.err().contains("starts over"), r.err());
    }

    /**
     * When the conversation outgrows the context, its oldest turns are dropped (the system message kept) and every
     * turn is answered.
     */
    @Test
    void theOldestTurnsGiveWayWhenTheContextIsFull() {
        CliRunner.Result r = CliRunner.runWithInput("Hi\nTell me more.\nAnd then?\nWhat next?\nThe end?\n", "chat",
                "--model", SharedData.stories260K().toString(), "--temperature", "0", "--max-tokens", "16",
                "--context", "96", "--system", "Be brief.");
        assertEquals(0, r.exit(), r.err());
        assertEquals(5, turns(r.err()).size(), r.err());
        assertTrue(r.err().contains("the oldest turn is dropped"), r.err());
        for (int[] turn : turns(r.err())) {
            assertTrue(turn[1] + 16 <= 96, "room for a reply of --max-tokens: " + r.err());
        }
        List<io.bitplane.server.ChatTemplate.Message> m = new java.util.ArrayList<>(List.of(
                new io.bitplane.server.ChatTemplate.Message("system", "s"),
                new io.bitplane.server.ChatTemplate.Message("user", "a"),
                new io.bitplane.server.ChatTemplate.Message("assistant", "b"),
                new io.bitplane.server.ChatTemplate.Message("user", "c")));
        assertTrue(ChatCommand.dropOldestTurn(m));
        assertEquals(List.of("system", "user"), m.stream().map(io.bitplane.server.ChatTemplate.Message::role).toList());
        assertEquals("c", m.get(1).content());
        assertTrue(!ChatCommand.dropOldestTurn(m), "the newest question stays");
    }

    /** A turn that no longer fits the context is refused with a note and the conversation goes on. */
    @Test
    void aTurnBeyondTheContextIsRefusedAndTheChatGoesOn() {
        CliRunner.Result r = CliRunner.runWithInput("Hi\n" + "a long line of words ".repeat(20) + "\n/reset\nHi\n",
                "chat", "--model", SharedData.stories260K().toString(), "--temperature", "0", "--max-tokens", "8",
                "--context", "48");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("no longer fits the context of 48"), r.err());
        assertEquals(2, turns(r.err()).size(), r.err());
        assertNotEquals(0, CliRunner.runWithInput("", "chat", "--model", SharedData.stories260K().toString(),
                "--max-tokens", "0").exit());
    }
}
