package io.bitplane.server;

import io.bitplane.runtime.BatchScheduler;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.TokenLogprobs;

import java.util.ArrayList;
import java.util.List;

/**
 * One choice of a response (a request's prompts times its {@code n}): its generation's ticket and what its text and
 * log-probabilities are gathered into until the generation ends.
 */
final class Choice {
    final int index;
    /** Whether it is its prompt's first choice: the one whose prompt tokens the usage counts. */
    final boolean firstOfPrompt;
    final BatchScheduler.Ticket ticket;
    final AssistantReply reply;
    /** Where the log-probabilities gather, or null when none are asked for. */
    final OpenAiLogprobs logprobs;
    /** The echoed prompt that begins a completion's text, or null. */
    final Echo echo;
    /** The generated tokens' log-probabilities, held until the prompt's (which come with the result) go first. */
    final List<TokenLogprobs> steps = new ArrayList<>();
    /** The generation's outcome, once it ended. */
    GenerationResult result;

    /** A completion's echoed prompt: its text and first token (the one without a log-probability). */
    record Echo(String text, int firstToken) {
    }

    Choice(int index, boolean firstOfPrompt, BatchScheduler.Ticket ticket, AssistantReply reply,
           OpenAiLogprobs logprobs, Echo echo) {
        this.index = index;
        this.firstOfPrompt = firstOfPrompt;
        this.ticket = ticket;
        this.reply = reply;
        this.logprobs = logprobs;
        this.echo = echo;
    }
}
