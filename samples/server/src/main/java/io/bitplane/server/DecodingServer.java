package io.bitplane.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.runtime.BatchScheduler;
import io.bitplane.runtime.GeneratedToken;
import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.javalin.Javalin;
import io.javalin.http.Context;
import jakarta.servlet.DispatcherType;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.EnumSet;
import java.util.UUID;
import java.util.concurrent.CancellationException;

/**
 * The OpenAI-compatible decoding server: {@code /v1/completions}, {@code /v1/chat/completions} (whole responses or
 * server-sent events), {@code /v1/embeddings} ({@link EmbeddingRoutes}), {@code /v1/models}, the tokenizer
 * ({@link TokenizerRoutes}), {@code /health} and {@code /metrics}, on Javalin. Requests become
 * generations of one {@link BatchScheduler}, which decodes all running sequences together; each HTTP thread only
 * waits for its request's events and writes them. Every refusal is OpenAI's error JSON with a 4xx status that
 * names the field at fault; nothing internal reaches a client.
 */
public final class DecodingServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DecodingServer.class);

    /** Metric labels: the routes, and "other" for everything else (so unknown paths cannot grow the labels). */
    private static final java.util.Set<String> ENDPOINTS = java.util.Set.of("/health", "/metrics", "/v1/models",
            "/v1/models/{id}", "/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/tokenize", "/detokenize",
            "/tokenizer_info");

    private final Model model;
    private final ServerConfig config;
    private final ObjectMapper json = new ObjectMapper();
    private final BatchScheduler scheduler;
    private final Metrics metrics;
    private final ChatTemplate template;
    private final OpenAiResponses responses;
    private final int context;
    private final byte[] apiKeyDigest;
    private final Javalin app;
    private final EmbeddingRoutes embeddings;
    private volatile boolean accepting = true;
    /** Requests in a handler or with a response still unsent; shutdown waits for them before closing sockets. */
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    private DecodingServer(Model model, ServerConfig config) {
        this.model = model;
        this.config = config;
        this.context = config.contextLength() <= 0 ? model.config().contextLength()
                : Math.min(config.contextLength(), model.config().contextLength());
        this.scheduler = new BatchScheduler(model,
                new BatchScheduler.Options(config.maxSequences(), config.maxQueue(), context));
        this.metrics = new Metrics(scheduler::queued, scheduler::active);
        this.template = ChatTemplate.forModel(model, LOG::warn);
        this.responses = new OpenAiResponses(json, config.modelId());
        this.embeddings = new EmbeddingRoutes(json, model, config, context);
        this.apiKeyDigest = config.apiKey() == null ? null : sha256(config.apiKey());
        this.app = Javalin.create(c -> {
            c.showJavalinBanner = false;
            c.http.disableCompression();
            c.http.prefer405over404 = true;
            c.http.maxRequestSize = config.maxBodyBytes();
            // Streams hold a thread each; the scheduler's limits bound how many run at once.
            c.jetty.threadPool = new QueuedThreadPool(Math.max(64, 2 * (config.maxSequences() + config.maxQueue())
                    + 16), 8, 60_000);
            ((QueuedThreadPool) c.jetty.threadPool).setName("bitplane-http");
            c.jetty.defaultHost = config.host();
            // Jetty reuses a connection's parsed header values, matching them case-insensitively by default: an
            // API key differing only in case from the one before it on the connection would read as the earlier.
            c.jetty.modifyHttpConfiguration(http -> http.setHeaderCacheCaseSensitive(true));
            c.jetty.modifyServletContextHandler(handler -> handler.addFilter(new FilterHolder(this::countInFlight),
                    "/*", EnumSet.of(DispatcherType.REQUEST)));
        });
        routes();
    }

    /** Starts serving {@code model} (which the caller keeps open until {@link #close()}). */
    public static DecodingServer start(Model model, ServerConfig config) {
        DecodingServer s = new DecodingServer(model, config);
        try {
            s.app.start(config.host(), config.port());
        } catch (RuntimeException e) {
            s.scheduler.close(java.time.Duration.ZERO);
            throw new IllegalStateException("cannot listen on " + config.host() + ":" + config.port() + ": "
                    + rootMessage(e), e);
        }
        LOG.info("serving {} on http://{}:{} ({}, {} sequences, queue {}, context {}, chat template: {})",
                config.modelId(), config.host(), s.port(), model.backendName(), config.maxSequences(),
                config.maxQueue(), s.context, s.template.isModelTemplate() ? "the model's" : "default");
        return s;
    }

    public int port() {
        return app.port();
    }

    private void routes() {
        app.before("/v1/*", this::authorize);
        app.get("/health", ctx -> ctx.json(java.util.Map.of("status", accepting ? "ok" : "shutting down")));
        app.get("/metrics", ctx -> ctx.contentType("text/plain; version=0.0.4; charset=utf-8")
                .result(metrics.exposition()));
        app.get("/v1/models", this::models);
        app.get("/v1/models/{id}", ctx -> {
            if (!ctx.pathParam("id").equals(config.modelId())) {
                throw unknownModel(ctx.pathParam("id"));
            }
            writeJson(ctx, 200, modelEntry());
        });
        TokenizerRoutes tokenizer = new TokenizerRoutes(json, model.tokenizer(), template, context);
        for (String path : new String[] {"/tokenize", "/detokenize", "/tokenizer_info"}) {
            app.before(path, this::authorize);
        }
        app.post("/tokenize", ctx -> writeJson(ctx, 200, tokenizer.tokenize(readBody(ctx))));
        app.post("/detokenize", ctx -> writeJson(ctx, 200, tokenizer.detokenize(readBody(ctx))));
        app.get("/tokenizer_info", ctx -> writeJson(ctx, 200, tokenizer.info()));
        app.post("/v1/embeddings", ctx -> {
            if (!accepting) {
                throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
            }
            JsonNode body = readBody(ctx);
            checkModel(OpenAiRequest.optionalText(body, "model"));
            writeJson(ctx, 200, embeddings.embeddings(body, config.modelId()));
        });
        app.post("/v1/completions", ctx -> generate(ctx, false));
        app.post("/v1/chat/completions", ctx -> generate(ctx, true));
        app.exception(ApiError.class, (e, ctx) -> writeError(ctx, e));
        app.exception(Exception.class, (e, ctx) -> {
            LOG.error("internal error on {} {}", ctx.method(), ctx.path(), e);
            writeError(ctx, new ApiError(500, "server_error", null, null, "internal server error"));
        });
        app.error(404, ctx -> {
            if (ctx.attribute("api-error") == null) {
                writeError(ctx, new ApiError(404, "invalid_request_error", null, "not_found",
                        "no such endpoint: " + ctx.method() + " " + ctx.path()));
            }
        });
        app.error(405, ctx -> {
            if (ctx.attribute("api-error") == null) {
                writeError(ctx, new ApiError(405, "invalid_request_error", null, null,
                        "method " + ctx.method() + " is not allowed on " + ctx.path()));
            }
        });
        app.after(ctx -> metrics.request(ENDPOINTS.contains(ctx.endpointHandlerPath()) ? ctx.endpointHandlerPath()
                : "other", ctx.statusCode()));
    }

    /** With an API key configured, {@code Authorization: Bearer <key>}, compared in constant time. */
    private void authorize(Context ctx) {
        if (apiKeyDigest == null) {
            return;
        }
        String header = ctx.header("Authorization");
        String presented = header != null && header.regionMatches(true, 0, "Bearer ", 0, 7) ? header.substring(7)
                : "";
        if (!MessageDigest.isEqual(apiKeyDigest, sha256(presented.trim()))) {
            ctx.header("WWW-Authenticate", "Bearer");
            throw new ApiError(401, "invalid_request_error", null, "invalid_api_key",
                    header == null ? "missing API key: send Authorization: Bearer <key>" : "incorrect API key");
        }
    }

    private ObjectNode modelEntry() {
        ObjectNode m = json.createObjectNode();
        m.put("id", config.modelId());
        m.put("object", "model");
        m.put("created", 0);
        m.put("owned_by", "bitplane");
        return m;
    }

    private void models(Context ctx) throws IOException {
        ObjectNode root = json.createObjectNode();
        root.put("object", "list");
        root.putArray("data").add(modelEntry());
        writeJson(ctx, 200, root);
    }

    /** A request may name the model served, or none. */
    private void checkModel(String name) {
        if (name != null && !name.equals(config.modelId())) {
            throw unknownModel(name);
        }
    }

    private ApiError unknownModel(String name) {
        return new ApiError(404, "invalid_request_error", "model", "model_not_found",
                "The model `" + name + "` does not exist; this server serves `" + config.modelId() + "`");
    }

    private JsonNode readBody(Context ctx) throws IOException {
        long declared = ctx.contentLength();
        if (declared > config.maxBodyBytes()) {
            throw tooLarge();
        }
        byte[] body;
        try (InputStream in = ctx.req().getInputStream()) {
            body = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, config.maxBodyBytes() + 1));
        }
        if (body.length > config.maxBodyBytes()) {
            throw tooLarge();
        }
        JsonNode node;
        try {
            node = json.readTree(body);
        } catch (JsonProcessingException e) {
            throw ApiError.invalid(null, "the request body is not valid JSON: " + e.getOriginalMessage());
        }
        if (node == null || !node.isObject()) {
            throw ApiError.invalid(null, "the request body must be a JSON object");
        }
        return node;
    }

    private ApiError tooLarge() {
        return new ApiError(413, "invalid_request_error", null, "request_too_large",
                "the request body exceeds " + config.maxBodyBytes() + " bytes");
    }

    private void generate(Context ctx, boolean chat) throws Exception {
        if (!accepting) {
            throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
        }
        OpenAiRequest r = OpenAiRequest.parse(readBody(ctx), chat, config.maxTokens());
        checkModel(r.model());
        OpenAiRequest.inVocabulary(r.sampler().logitBias().keySet().stream().mapToInt(Integer::intValue).toArray(),
                model.config().vocabSize(), "logit_bias", "logit_bias");
        java.util.List<Prepared> prompts = new java.util.ArrayList<>();
        if (chat) {
            try {
                prompts.add(prepare(template.render(r.messages(), r.tools(), r.templateArguments()), null,
                        "messages", false));
            } catch (IllegalArgumentException e) {
                throw ApiError.invalid("messages", e.getMessage());
            }
        } else {
            for (OpenAiRequest.Prompt p : r.prompts()) {
                prompts.add(prepare(p.text(), p.tokenIds(), "prompt", r.echo()));
            }
        }
        if (prompts.size() * r.n() > config.maxQueue()) {
            String field = r.n() > 1 ? "n" : "prompt";
            throw ApiError.invalid(field, "`" + field + "` asks for " + prompts.size() * r.n() + " choices; this "
                    + "server queues at most " + config.maxQueue());
        }
        RequestEvents events = new RequestEvents(metrics);
        java.util.List<Choice> choices = new java.util.ArrayList<>();
        try {
            for (Prepared p : prompts) {
                for (int j = 0; j < r.n(); j++) {
                    choices.add(submit(ctx, r, p, j, choices.size(), events));
                }
            }
            String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
            long created = System.currentTimeMillis() / 1000;
            if (r.stream()) {
                stream(ctx, r, events, choices, id, created);
            } else {
                whole(ctx, r, events, choices, id, created);
            }
        } finally {
            // Whatever ended this thread's part (a client gone, an error), the sequences stop at the next step.
            choices.forEach(c -> c.ticket.cancel());
        }
    }

    /**
     * A prompt ready to run: its text (for token ids, their text when it is echoed, else empty: the tokens are used
     * as they are), its tokens, and the field it came from.
     */
    private record Prepared(String text, int[] tokens, String field) {
    }

    /** Encodes a prompt (or checks the token ids given for it) and checks it against the limits. */
    private Prepared prepare(String text, int[] tokenIds, String field, boolean echoed) {
        int[] encoded;
        if (tokenIds != null) {
            encoded = tokenIds;
            OpenAiRequest.inVocabulary(encoded, model.config().vocabSize(), field, field);
            text = echoed ? model.tokenizer().decode(encoded) : "";
        } else {
            try {
                encoded = model.tokenizer().encode(text, true, false);
            } catch (IllegalArgumentException e) {  // a character the vocabulary cannot write
                throw ApiError.invalid(field, e.getMessage());
            }
        }
        if (encoded.length > config.maxPromptTokens()) {
            throw ApiError.invalid(field, "the prompt has " + encoded.length + " tokens; the limit is "
                    + config.maxPromptTokens());
        }
        if (encoded.length >= context) {
            throw ApiError.invalid(field, "the prompt has " + encoded.length + " tokens; the context holds "
                    + context + " and needs room for at least one more");
        }
        return new Prepared(text, encoded, field);
    }

    /**
     * Queues choice {@code index}, the {@code j}th of prompt {@code p} (sampled with the request's seed plus j, so
     * that a prompt's choices differ), and returns it.
     */
    private Choice submit(Context ctx, OpenAiRequest r, Prepared p, int j, int index, RequestEvents events) {
        int[] encoded = p.tokens();
        int maxTokens = r.maxTokens() != null ? r.maxTokens()
                : r.chat() ? Math.min(config.maxTokens(), context - encoded.length) : 16;
        java.util.List<String> stop = r.chat() ? concat(r.stop(), template.stopStrings()) : r.stop();
        GenerationRequest request = new GenerationRequest(p.text(), maxTokens,
                r.sampler().withSeed(r.sampler().seed() + j), stop, true)
                .withPromptTokens(encoded).withLogprobs(r.logprobs())
                .withPromptLogprobs(r.echo() ? r.logprobs() : -1)
                .withConstraint(r.responseFormat() != null ? r.responseFormat()
                        : r.requiredFunctions().isEmpty() ? null : template.callOf(r.requiredFunctions(), r.tools()));
        BatchScheduler.Ticket ticket;
        try {
            ticket = scheduler.submit(request, events.listener(index));
        } catch (BatchScheduler.QueueFullException e) {
            ctx.header("Retry-After", "1");
            throw new ApiError(429, "rate_limit_exceeded", null, "rate_limit_exceeded",
                    "the server is busy: " + config.maxSequences() + " sequences are running and " + e.getMessage());
        } catch (IllegalStateException e) {
            throw new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
        }
        AssistantReply reply = r.chat() ? assistantReply(r, p.text()) : new AssistantReply(false, false, null, true);
        OpenAiLogprobs logprobs = r.logprobs() < 0 ? null
                : new OpenAiLogprobs(json, model.tokenizer(), r.chat(), r.echo() ? -1 : encoded[encoded.length - 1]);
        return new Choice(index, j == 0, ticket, reply, logprobs,
                r.echo() ? new Choice.Echo(p.text(), encoded[0]) : null);
    }

    /**
     * How to read this chat's reply: thinking apart when the template has a thinking form (unless the request's
     * reasoning_format is "none", or JSON mode or a required call, which let the reply be nothing but the object or
     * the call: a prompt that opened the thinking would otherwise have them read as thinking), and calls in the
     * template's form when the request offers tools.
     */
    private AssistantReply assistantReply(OpenAiRequest r, String prompt) {
        ToolCallParser tools = r.tools().isEmpty() ? null : new ToolCallParser(template.writesTools()
                ? template.toolCallFormat() : ToolCallParser.Format.JSON, java.util.Set.copyOf(r.toolNames()));
        boolean thinking = template.thinks() && r.splitReasoning() && r.responseFormat() == null
                && r.requiredFunctions().isEmpty();
        return new AssistantReply(thinking, prompt.stripTrailing().endsWith(AssistantReply.OPEN), tools,
                r.parallelToolCalls());
    }

    /** Waits for every choice's generation to end, then writes the whole response. */
    private void whole(Context ctx, OpenAiRequest r, RequestEvents events, java.util.List<Choice> choices, String id,
                       long created) throws Exception {
        int running = choices.size();
        while (running > 0) {
            RequestEvents.Event e = events.next();
            Choice c = choices.get(e.choice());
            if (e.payload() instanceof GeneratedToken token && c.logprobs != null && token.logprobs() != null) {
                c.steps.add(token.logprobs());
            } else if (e.payload() instanceof GenerationResult result) {
                c.result = result;
                running--;
            } else if (e.payload() instanceof Exception failure) {
                throw failureToApiError(failure);
            }
        }
        java.util.List<ObjectNode> bodies = new java.util.ArrayList<>();
        for (Choice c : choices) {
            c.reply.next(c.result.text());
            AssistantReply.Whole w = c.reply.whole();
            ObjectNode body = responses.completion(r.chat(), false, id, created,
                    c.echo == null ? w.content() : c.echo.text() + w.content(), true, finishReason(c.result, w),
                    null);
            responses.withReasoning(body, false, w.reasoning());
            if (c.logprobs != null) {
                if (c.echo != null) {  // the prompt's tokens first: the first has no log-probability
                    c.logprobs.addUnscored(c.echo.firstToken());
                    c.result.promptLogprobs().forEach(c.logprobs::add);
                }
                c.steps.forEach(c.logprobs::add);
                responses.withLogprobs(body, c.logprobs.take());
            }
            bodies.add(w.calls().isEmpty() ? body : responses.withToolCalls(body, false, w.calls()));
        }
        writeJson(ctx, 200, responses.merge(bodies, usage(choices)));
    }

    /** The choices' token counts: each prompt's (and its cached part) once, every choice's generated tokens. */
    private ObjectNode usage(java.util.List<Choice> choices) {
        int prompt = 0;
        int generated = 0;
        int cached = 0;
        for (Choice c : choices) {
            generated += c.result.generatedTokens();
            if (c.firstOfPrompt) {
                prompt += c.result.promptTokens();
                cached += c.result.cachedPromptTokens();
            }
        }
        return responses.usage(prompt, generated, cached);
    }

    /** "tool_calls" for a reply that ended of itself with calls, else the generation's reason. */
    private static String finishReason(GenerationResult result, AssistantReply.Whole reply) {
        return !reply.calls().isEmpty() && result.finishReason() == io.bitplane.runtime.FinishReason.STOP
                ? "tool_calls" : OpenAiResponses.finishReason(result.finishReason());
    }

    /**
     * Server-sent events: each token's text as {@link AssistantReply#next} releases it (thinking as
     * reasoning_content; text that may begin a call held back), then what it held, the calls whole in one chunk, and
     * the finish reason; each chunk carries its choice's index, and the choices' chunks interleave as they come.
     */
    private void stream(Context ctx, OpenAiRequest r, RequestEvents events, java.util.List<Choice> choices,
                        String id, long created) throws Exception {
        ctx.status(200);
        ctx.res().setContentType("text/event-stream; charset=utf-8");
        ctx.res().setHeader("Cache-Control", "no-cache");
        ctx.res().setHeader("X-Accel-Buffering", "no");
        OutputStream out = ctx.res().getOutputStream();
        try {
            for (Choice c : choices) {
                if (r.chat()) {
                    send(out, c.index, responses.completion(true, true, id, created, "", true, null, null));
                } else if (c.echo != null) {  // (echo with logprobs is refused in a stream)
                    send(out, c.index, responses.completion(false, true, id, created, c.echo.text(), false, null,
                            null));
                }
            }
            out.flush();
            int running = choices.size();
            while (running > 0) {
                RequestEvents.Event e = events.next();
                Choice c = choices.get(e.choice());
                if (e.payload() instanceof GeneratedToken token) {
                    boolean scored = c.logprobs != null && token.logprobs() != null;
                    if (scored) {
                        c.logprobs.add(token.logprobs());
                    }
                    sendDelta(out, r, id, created, c, c.reply.next(token.text()), scored ? c.logprobs.take() : null);
                } else if (e.payload() instanceof GenerationResult result) {
                    c.result = result;
                    running--;
                    sendDelta(out, r, id, created, c, c.reply.remainder(), null);
                    AssistantReply.Whole w = c.reply.whole();
                    if (!w.calls().isEmpty()) {
                        send(out, c.index, responses.withToolCalls(responses.completion(true, true, id, created,
                                null, false, null, null), true, w.calls()));
                    }
                    send(out, c.index, responses.completion(r.chat(), true, id, created, r.chat() ? null : "",
                            false, finishReason(result, w), null));
                } else if (e.payload() instanceof Exception failure) {
                    send(out, failureToApiError(failure).toJson(json));
                    break;
                }
            }
            if (running == 0 && r.includeUsage()) {
                send(out, responses.usageChunk(r.chat(), id, created, usage(choices)));
            }
            out.write("data: [DONE]\n\n".getBytes(StandardCharsets.UTF_8));
            out.flush();
        } catch (IOException gone) {
            // The client went away: the finally of generate() cancels the sequences.
            LOG.debug("client left {} mid-stream", id);
        }
    }

    /**
     * A chunk of new reasoning and content, with the log-probabilities of the token that brought them when asked
     * for (sent even when the token's text is held back), unless there is nothing to send.
     */
    private void sendDelta(OutputStream out, OpenAiRequest r, String id, long created, Choice c,
                           AssistantReply.Delta d, ObjectNode logprobs) throws IOException {
        if (!d.isEmpty() || logprobs != null) {
            ObjectNode chunk = responses.withReasoning(responses.completion(r.chat(), true, id, created,
                    r.chat() && d.content().isEmpty() ? null : d.content(), false, null, null), true, d.reasoning());
            send(out, c.index, logprobs == null ? chunk : responses.withLogprobs(chunk, logprobs));
        }
    }

    /** A chunk of choice {@code index}. */
    private void send(OutputStream out, int index, ObjectNode chunk) throws IOException {
        send(out, responses.atIndex(chunk, index));
    }

    private void send(OutputStream out, ObjectNode chunk) throws IOException {
        out.write(("data: " + json.writeValueAsString(chunk) + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static ApiError failureToApiError(Exception failure) {
        if (failure instanceof IllegalArgumentException) {
            return ApiError.invalid(null, failure.getMessage());
        }
        if (failure instanceof CancellationException) {
            return new ApiError(503, "server_error", null, "shutting_down", "the server is shutting down");
        }
        LOG.error("generation failed", failure);
        return new ApiError(500, "server_error", null, null, "internal server error");
    }

    private void writeError(Context ctx, ApiError e) {
        ctx.attribute("api-error", Boolean.TRUE);
        if (ctx.res().isCommitted()) {
            return;
        }
        writeJson(ctx, e.status, e.toJson(json));
    }

    private void writeJson(Context ctx, int status, JsonNode body) {
        try {
            ctx.status(status).contentType("application/json").result(json.writeValueAsString(body));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Counts a request from before its handler runs until its response is complete. Javalin writes a result (and an
     * error handler's answer) after the handler, and Jetty ends a response after that: closing the response here, on
     * the request's thread, is what puts it on the wire before {@link #close()} sees the count drop and stops Jetty.
     */
    private void countInFlight(ServletRequest request, ServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        inFlight.incrementAndGet();
        try {
            chain.doFilter(request, response);
            if (!request.isAsyncStarted()) {
                try {
                    Request.getBaseRequest(request).getResponse().closeOutput();
                } catch (IOException gone) {
                    LOG.debug("client left before its response ended", gone);
                }
            }
        } finally {
            inFlight.decrementAndGet();
        }
    }

    /**
     * Graceful shutdown: refuses new requests (503), lets running generations finish for the configured grace and
     * then ends them (their streams close with a finish reason and {@code [DONE]}), then stops the HTTP server.
     */
    @Override
    public void close() {
        accepting = false;
        scheduler.close(config.shutdownGrace());
        // Every generation has now ended; let the HTTP threads finish their responses before sockets close.
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (inFlight.get() > 0 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
            try {
                Thread.sleep(1);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        app.stop();
        embeddings.close();
    }

    private static java.util.List<String> concat(java.util.List<String> a, java.util.List<String> b) {
        java.util.List<String> out = new java.util.ArrayList<>(a);
        out.addAll(b);
        return out;
    }

    private static byte[] sha256(String s) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String rootMessage(Throwable e) {
        while (e.getCause() != null) {
            e = e.getCause();
        }
        return e.getMessage();
    }
}
