package io.bitplane.cli;

import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.SamplerSettings;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;
import io.bitplane.server.ChatTemplate;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code bitplane chat}: a conversation in the terminal, as llama.cpp's conversation mode and Jlama's chat hold one.
 * Each line read is a user turn; the conversation so far goes through the model's chat template (the server's:
 * {@link ChatTemplate}) and the reply streams to stdout. One session serves every turn, and since each prompt
 * repeats the last one and its reply, the session's prompt cache ({@link Session#start}) computes only the new
 * turn. Prompts, notes and speeds go to stderr, so stdout holds only the replies.
 */
@Command(name = "chat", mixinStandardHelpOptions = true, description = "Chat with a model in its chat template: "
        + "one line per turn; /reset starts over, /exit or end of input ends.")
final class ChatCommand implements Callable<Integer> {
    @Mixin
    ModelArgs modelArgs;

    @Mixin
    SamplerArgs samplerArgs;

    @Option(names = "--system", description = "A system message to open the conversation with.")
    String system;

    @Option(names = "--max-tokens", defaultValue = "512", description = "Most tokens per reply. "
            + "Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--context", defaultValue = "0", description = "KV cache positions (0: the model's).")
    int context;

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 1) {
            throw new IllegalArgumentException("--max-tokens must be at least 1");
        }
        SamplerSettings sampler = samplerArgs.settings();
        PrintStream out = new PrintStream(System.out, false, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (Model model = Model.open(modelArgs.resolvedModel(), modelArgs.options());
             Session session = model.newSession(new SessionOptions(context, 32))) {
            ChatTemplate template = ChatTemplate.forModel(model, w -> err.println("note: " + w));
            err.printf(Locale.ROOT, "chatting with %s (%s chat template, context %d, backend %s); /reset starts "
                            + "over, /exit or end of input ends%n", modelArgs.resolvedModel().getFileName(),
                    template.isModelTemplate() ? "its own" : "the default", session.contextLength(),
                    model.backendName());
            List<ChatTemplate.Message> messages = opening();
            while (true) {
                err.print("> ");
                err.flush();
                String line = in.readLine();
                if (line == null || line.strip().equals("/exit")) {
                    break;
                }
                if (line.strip().equals("/reset")) {
                    messages = opening();
                    err.println("(the conversation starts over)");
                    continue;
                }
                if (line.isBlank()) {
                    continue;
                }
                messages.add(new ChatTemplate.Message("user", line));
                String reply = answer(model, session, template, messages, sampler, out, err);
                if (reply == null) {
                    messages.remove(messages.size() - 1);
                } else {
                    messages.add(new ChatTemplate.Message("assistant", reply));
                }
            }
        }
        return 0;
    }

    /**
     * Removes the oldest turn (its user message and the replies up to the next user message; never a system
     * message or the newest user message); false when there is none to drop.
     */
    static boolean dropOldestTurn(List<ChatTemplate.Message> messages) {
        int first = 0;
        while (first < messages.size() && messages.get(first).role().equals("system")) {
            first++;
        }
        int next = first + 1;
        while (next < messages.size() && !messages.get(next).role().equals("user")) {
            next++;
        }
        if (next >= messages.size()) {
            return false;  // the oldest turn is the one being asked
        }
        messages.subList(first, next).clear();
        return true;
    }

    private List<ChatTemplate.Message> opening() {
        List<ChatTemplate.Message> messages = new ArrayList<>();
        if (system != null && !system.isBlank()) {
            messages.add(new ChatTemplate.Message("system", system));
        }
        return messages;
    }

    /** Streams the reply to the conversation to {@code out}; null when it cannot be given (said on stderr). */
    private String answer(Model model, Session session, ChatTemplate template, List<ChatTemplate.Message> messages,
                          SamplerSettings sampler, PrintStream out, PrintStream err) {
        String prompt;
        int[] tokens;
        int room;
        while (true) {
            try {
                prompt = template.render(messages);
                tokens = model.tokenizer().encode(prompt, true, false);
            } catch (IllegalArgumentException e) {
                err.println("cannot send that: " + e.getMessage());
                return null;
            }
            room = session.contextLength() - tokens.length;
            // Room for a reply of a quarter of the context (or --max-tokens) at least, else the oldest turn goes,
            // as chat front ends do, rather than the conversation ending.
            if (room >= Math.min(maxTokens, session.contextLength() / 4) || !dropOldestTurn(messages)) {
                break;
            }
            err.printf(Locale.ROOT, "(the oldest turn is dropped: the conversation no longer fits the context of "
                    + "%d)%n", session.contextLength());
        }
        if (room < 1) {
            err.printf(Locale.ROOT, "the conversation (%d tokens) no longer fits the context of %d; /reset starts "
                    + "over%n", tokens.length, session.contextLength());
            return null;
        }
        GenerationRequest request = new GenerationRequest(prompt, Math.min(maxTokens, room), sampler,
                template.stopStrings(), true).withPromptTokens(tokens);
        GenerationResult r = session.generate(request, t -> {
            out.print(t.text());
            out.flush();
        });
        out.println();
        out.flush();
        err.printf(Locale.ROOT, "(%d tokens, %.1f tokens/s; prompt %d tokens, %d of them cached)%n",
                r.generatedTokens(), r.tokensPerSecond(), r.promptTokens(), r.cachedPromptTokens());
        return r.text();
    }
}
