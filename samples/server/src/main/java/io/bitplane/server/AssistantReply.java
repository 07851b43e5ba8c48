package io.bitplane.server;

import java.util.List;

/**
 * A chat model's reply, split as llama.cpp's server splits it: the thinking of a reasoning model
 * ({@code <think>...</think>} at the start, as Qwen3, QwQ and DeepSeek-R1 write it) becomes
 * {@code reasoning_content}, the function calls after it {@code tool_calls} ({@link ToolCallParser}), and the rest
 * {@code content}. Fed token by token ({@link #next}), it releases only what no later token can change, so a
 * stream's deltas add up to the whole reply's parts ({@link #whole}, {@link #remainder}).
 *
 * <p>A reasoning model's template may open the thinking itself (the prompt ends with {@code <think>}): then the
 * reply starts inside it. The thinking is trimmed of white space, and so is the start of the content after it.
 */
final class AssistantReply {
    static final String OPEN = "<think>";
    static final String CLOSE = "</think>";

    /** Text that may be sent now: new reasoning and new content (either may be empty). */
    record Delta(String reasoning, String content) {
        boolean isEmpty() {
            return reasoning.isEmpty() && content.isEmpty();
        }
    }

    /** The reply's parts: reasoning (null when none), content (null when nothing but calls) and calls. */
    record Whole(String reasoning, String content, List<ToolCall> calls) {
    }

    private final boolean splitThinking;
    private final boolean startsThinking;
    private final ToolCallParser tools;
    private final boolean parallelCalls;
    private final StringBuilder text = new StringBuilder();
    private int reasoningSent;
    private int contentSent;

    /**
     * @param splitThinking  whether thinking is reasoning_content (else it stays in the content)
     * @param startsThinking whether the prompt opened the thinking, so that the reply starts inside it
     * @param tools          how to find calls in the content, or null when the request offers no tools
     * @param parallelCalls  whether several calls may be returned (else the first only)
     */
    AssistantReply(boolean splitThinking, boolean startsThinking, ToolCallParser tools, boolean parallelCalls) {
        this.splitThinking = splitThinking;
        this.startsThinking = splitThinking && startsThinking;
        this.tools = tools;
        this.parallelCalls = parallelCalls;
    }

    /** The parts of a reply given whole. */
    static Whole of(String reply, boolean splitThinking, boolean startsThinking, ToolCallParser tools,
                    boolean parallelCalls) {
        AssistantReply r = new AssistantReply(splitThinking, startsThinking, tools, parallelCalls);
        r.text.append(reply);
        return r.whole();
    }

    /** Adds a token's text; returns what of the reply may now be sent. */
    Delta next(String tokenText) {
        text.append(tokenText);
        Split s = split(false);
        // the whole's reasoning is stripped: white space at its end so far may be its end
        String reasoning = s.reasoning == null ? "" : s.reasoning.substring(0,
                ToolCallParser.beforeTrailingSpace(s.reasoning, s.reasoning.length()));
        String content = s.content == null ? "" : s.content.substring(0,
                tools == null ? s.content.length() : tools.releasable(s.content));
        return release(reasoning, content);
    }

    /** The whole reply so far, read as ended. */
    Whole whole() {
        Split s = split(true);
        String reasoning = s.reasoning == null ? null : s.reasoning.strip();
        if (s.content == null) {
            return new Whole(reasoning, null, List.of());
        }
        if (tools == null) {
            return new Whole(reasoning, s.content, List.of());
        }
        ToolCallParser.Parsed parsed = tools.parse(s.content);
        List<ToolCall> calls = parallelCalls || parsed.calls().size() <= 1 ? parsed.calls()
                : parsed.calls().subList(0, 1);
        return new Whole(reasoning, parsed.content(), calls);
    }

    /** What of {@link #whole} {@link #next} has not released. */
    Delta remainder() {
        Whole w = whole();
        return release(w.reasoning() == null ? "" : w.reasoning(), w.content() == null ? "" : w.content());
    }

    /** The parts of {@code reasoning} and {@code content} past what was sent, which are then sent. */
    private Delta release(String reasoning, String content) {
        Delta d = new Delta(reasoning.length() > reasoningSent ? reasoning.substring(reasoningSent) : "",
                content.length() > contentSent ? content.substring(contentSent) : "");
        reasoningSent = Math.max(reasoningSent, reasoning.length());
        contentSent = Math.max(contentSent, content.length());
        return d;
    }

    /** A reply's thinking and the content after it (either may be null). */
    private record Split(String reasoning, String content) {
    }

    /**
     * The reply cut into its thinking (without the markers and leading white space; null when it has none) and the
     * content after it (without leading white space after thinking; null while it may still be thinking). Unless
     * {@code ended}, text that may yet turn out to open or close the thinking is left out of both.
     */
    private Split split(boolean ended) {
        String all = text.toString();
        if (!splitThinking) {
            return new Split(null, all);
        }
        int body;
        if (startsThinking) {
            body = 0;
        } else {
            String lead = all.stripLeading();
            if (lead.startsWith(OPEN)) {
                body = all.length() - lead.length() + OPEN.length();
            } else if (!ended && OPEN.startsWith(lead)) {
                return new Split(null, null);  // nothing yet, or the start of "<think>"
            } else {
                return new Split(null, all);
            }
        }
        int close = all.indexOf(CLOSE, body);
        if (close < 0) {
            int end = ended ? all.length() : all.length() - ToolCallParser.partialSuffix(all, CLOSE);
            return new Split(all.substring(body, Math.max(body, end)).stripLeading(), null);
        }
        return new Split(all.substring(body, close).stripLeading(), all.substring(close + CLOSE.length())
                .stripLeading());
    }
}
