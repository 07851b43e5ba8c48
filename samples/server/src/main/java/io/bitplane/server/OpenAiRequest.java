package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.bitplane.runtime.GrammarConstraint;
import io.bitplane.runtime.JsonSchemaConstraint;
import io.bitplane.runtime.SamplerSettings;
import io.bitplane.runtime.TokenConstraint;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Supplier;

/**
 * A completion or chat completion request, read from OpenAI's JSON and checked field by field: a missing,
 * mistyped or out-of-range field gives a 400 {@link ApiError} naming it. Fields the server does not implement
 * are refused when they ask for something (a suffix, mirostat...) and ignored when they are
 * neutral (a client's defaults).
 *
 * @param messages          chat messages (chat only), else null
 * @param prompts           the prompts (completions only: one, or a batch, each a choice), else empty
 * @param n                 choices per prompt (each sampled with its own seed: the request's plus its number)
 * @param tools             the functions offered to the model (OpenAI's tool objects as JSON maps): empty when none
 *                          are, or when {@code tool_choice} is "none"
 * @param parallelToolCalls whether a reply may make several calls ({@code parallel_tool_calls}, default true)
 * @param templateArguments variables for the chat template ({@code chat_template_kwargs}, as llama.cpp and vLLM
 *                          take them: Qwen3's {@code enable_thinking})
 * @param splitReasoning    whether a thinking model's thinking is returned apart, as reasoning_content (llama.cpp's
 *                          {@code reasoning_format}: "auto" or "deepseek", the default, or "none": in the content)
 * @param logprobs          -1, or how many likeliest alternatives each token's log-probability comes with
 * @param responseFormat    the rule the reply must follow ({@code response_format} json_object: any JSON object;
 *                          json_schema: a value its schema accepts; llama.cpp's {@code grammar} and
 *                          {@code json_schema}), or null for text
 * @param requiredFunctions the functions of which the reply must call one ({@code tool_choice} "required" or
 *                          naming one), or empty
 * @param echo              (completions) the reply's text begins with the prompt, and its log-probabilities, when
 *                          asked for, begin with the prompt's tokens' (the first has none)
 */
record OpenAiRequest(boolean chat, String model, List<Prompt> prompts, int n,
                     List<ChatTemplate.Message> messages,
                     Integer maxTokens, SamplerSettings sampler, List<String> stop, boolean stream,
                     boolean includeUsage, List<Map<String, Object>> tools, boolean parallelToolCalls,
                     Map<String, Object> templateArguments, boolean splitReasoning, int logprobs,
                     Supplier<TokenConstraint> responseFormat, List<String> requiredFunctions, boolean echo) {

    static final List<String> ROLES = List.of("system", "developer", "user", "assistant", "tool");

    /** The most choices a request may ask for (OpenAI's bound on n). */
    static final int MAX_CHOICES = 128;

    /**
     * A completion prompt: its text, or its token ids when the request gives them (as OpenAI allows: used as they
     * are, BOS not added; their range is checked by the server, which knows the vocabulary), the text then null.
     */
    record Prompt(String text, int[] tokenIds) {
    }

    static OpenAiRequest parse(JsonNode body, boolean chat, int maxTokensLimit) {
        if (body == null || !body.isObject()) {
            throw ApiError.invalid(null, "the request body must be a JSON object");
        }
        String model = optionalText(body, "model");
        List<ChatTemplate.Message> messages = chat ? messages(body) : null;
        List<Prompt> prompts = chat ? List.of() : prompts(body.get("prompt"));
        boolean echo = present(body, "echo") && body.get("echo").asBoolean(false);
        if (echo && chat) {
            throw ApiError.invalid("echo", "`echo` is for completions; chat completions have none");
        }
        if (present(body, "echo") && !body.get("echo").isBoolean()) {
            throw ApiError.invalid("echo", "`echo` must be true or false");
        }
        // With echo, 0 new tokens asks only for the prompt (and its log-probabilities), as scoring clients do.
        Integer maxTokens = optionalInt(body, chat && !present(body, "max_tokens") ? "max_completion_tokens"
                : "max_tokens", echo ? 0 : 1, maxTokensLimit);
        int n = present(body, "n") ? optionalInt(body, "n", 1, MAX_CHOICES) : 1;
        if (n * Math.max(1, prompts.size()) > MAX_CHOICES) {
            throw ApiError.invalid("n", "`n` times the prompts must be at most " + MAX_CHOICES);
        }
        int logprobs = logprobs(body, chat);
        refuseUnimplemented(body);
        double temperature = optionalNumber(body, "temperature", 0, 2, 1);
        double topP = optionalNumber(body, "top_p", 0, 1, 1);
        if (topP == 0) {
            throw ApiError.invalid("top_p", "top_p must be greater than 0");
        }
        double minP = optionalNumber(body, "min_p", 0, 1, 0);
        if (present(body, "repetition_penalty") && present(body, "repeat_penalty")) {
            throw ApiError.invalid("repeat_penalty", "give `repetition_penalty` or `repeat_penalty`, not both");
        }
        double penalty = optionalNumber(body, present(body, "repeat_penalty") ? "repeat_penalty"
                : "repetition_penalty", 0.01, 10, 1);
        Integer window = optionalInt(body, "repeat_last_n", -1, Integer.MAX_VALUE);
        Integer topK = optionalInt(body, "top_k", 0, Integer.MAX_VALUE);
        long seed = present(body, "seed") ? longValue(body, "seed") : ThreadLocalRandom.current().nextLong();
        SamplerSettings sampler = new SamplerSettings((float) temperature, topK == null ? 0 : topK, (float) topP,
                (float) minP, (float) penalty, window == null ? 64 : window == -1 ? Integer.MAX_VALUE : window, seed,
                (float) optionalNumber(body, "frequency_penalty", -2, 2, 0),
                (float) optionalNumber(body, "presence_penalty", -2, 2, 0), logitBias(body));
        boolean stream = optionalBoolean(body, "stream", false);
        if (stream && echo && logprobs >= 0) {
            throw ApiError.invalid("echo", "`echo` with `logprobs` is not supported in a stream; ask without "
                    + "`stream`");
        }
        boolean includeUsage = false;
        JsonNode options = body.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!options.isObject()) {
                throw ApiError.invalid("stream_options", "stream_options must be an object");
            }
            includeUsage = optionalBoolean(options, "include_usage", false);
        }
        for (String old : List.of("functions", "function_call")) {
            if (present(body, old)) {
                throw ApiError.invalid(old, "`" + old + "` is not supported; offer functions with `tools`");
            }
        }
        Supplier<TokenConstraint> format = outputRule(body);
        List<Map<String, Object>> tools = chat ? tools(body) : List.of();
        List<String> required = chat ? requiredFunctions(body, tools) : List.of();
        if (format != null && !required.isEmpty()) {
            throw ApiError.invalid("tool_choice", "a `tool_choice` that requires a call and a rule on the reply "
                    + "(`response_format`, `grammar` or `json_schema`) cannot both hold");
        }
        boolean parallel = optionalBoolean(body, "parallel_tool_calls", true);
        String reasoning = optionalText(body, "reasoning_format");
        if (reasoning != null && !List.of("auto", "deepseek", "none").contains(reasoning)) {
            throw ApiError.invalid("reasoning_format", "`reasoning_format` must be \"auto\", \"deepseek\" or "
                    + "\"none\"");
        }
        return new OpenAiRequest(chat, model, prompts, n, messages, maxTokens, sampler, stop(body), stream,
                includeUsage, tools, parallel, templateArguments(body), !"none".equals(reasoning), logprobs, format,
                required, echo);
    }

    /**
     * How many alternatives each token's log-probability comes with, or -1 for none: chat's {@code logprobs} true
     * with {@code top_logprobs} (0-20), completions' {@code logprobs} (0-5); false or null is none.
     */
    private static int logprobs(JsonNode body, boolean chat) {
        JsonNode flag = body.get("logprobs");
        boolean off = flag == null || flag.isNull() || flag.isBoolean() && !flag.asBoolean();
        if (!chat) {
            Integer n = off ? null : optionalInt(body, "logprobs", 0, 5);
            return n == null ? -1 : n;
        }
        if (!off && !flag.isBoolean()) {
            throw ApiError.invalid("logprobs", "`logprobs` must be true or false");
        }
        Integer top = optionalInt(body, "top_logprobs", 0, io.bitplane.runtime.GenerationRequest.MAX_LOGPROBS);
        if (top != null && off) {
            throw ApiError.invalid("top_logprobs", "`top_logprobs` needs `logprobs` true");
        }
        return off ? -1 : top == null ? 0 : top;
    }

    /**
     * Fields of OpenAI's and llama.cpp's APIs that this server does not implement, with the value that asks for
     * nothing: any other value is refused (400) rather than silently ignored.
     */
    private static final Map<String, List<String>> UNIMPLEMENTED = new java.util.LinkedHashMap<>();

    static {
        UNIMPLEMENTED.put("suffix", List.of("\"\""));
        UNIMPLEMENTED.put("best_of", List.of("1"));
        UNIMPLEMENTED.put("audio", List.of());
        UNIMPLEMENTED.put("modalities", List.of("[\"text\"]"));
        UNIMPLEMENTED.put("ignore_eos", List.of("false"));
        UNIMPLEMENTED.put("mirostat", List.of("0"));
        UNIMPLEMENTED.put("typical_p", List.of("1", "1.0"));
    }

    private static void refuseUnimplemented(JsonNode body) {
        for (Map.Entry<String, List<String>> e : UNIMPLEMENTED.entrySet()) {
            String field = e.getKey();
            if (present(body, field) && !e.getValue().contains(body.get(field).toString())) {
                throw ApiError.invalid(field, "`" + field + "` is not supported");
            }
        }
    }

    /**
     * OpenAI's {@code logit_bias}: token ids (as the object's keys) to a bias in -100..100 added to their logits.
     * The ids are checked against the vocabulary by the server, which knows it.
     */
    private static Map<Integer, Float> logitBias(JsonNode body) {
        JsonNode bias = body.get("logit_bias");
        if (bias == null || bias.isNull()) {
            return Map.of();
        }
        if (!bias.isObject()) {
            throw ApiError.invalid("logit_bias", "`logit_bias` must be an object of token ids to biases");
        }
        Map<Integer, Float> out = new java.util.TreeMap<>();
        for (Map.Entry<String, JsonNode> e : bias.properties()) {
            int id;
            try {
                id = Integer.parseInt(e.getKey());
            } catch (NumberFormatException notAnId) {
                id = -1;
            }
            if (id < 0 || !e.getKey().equals(Integer.toString(id))) {
                throw ApiError.invalid("logit_bias", "`logit_bias` key \"" + e.getKey() + "\" is not a token id");
            }
            JsonNode v = e.getValue();
            if (!v.isNumber() || !(v.asDouble() >= -100 && v.asDouble() <= 100)) {
                throw ApiError.invalid("logit_bias", "`logit_bias` of token " + id + " must be a number in "
                        + "[-100, 100]");
            }
            out.put(id, (float) v.asDouble());
        }
        return out;
    }

    /** Names the server sets in the template itself. */
    private static final List<String> TEMPLATE_VARIABLES = List.of("messages", "tools", "add_generation_prompt",
            "bos_token", "eos_token", "raise_exception", "strftime_now");

    @SuppressWarnings("unchecked")
    private static Map<String, Object> templateArguments(JsonNode body) {
        JsonNode args = body.get("chat_template_kwargs");
        if (args == null || args.isNull()) {
            return Map.of();
        }
        if (!args.isObject()) {
            throw ApiError.invalid("chat_template_kwargs", "`chat_template_kwargs` must be an object");
        }
        for (String name : TEMPLATE_VARIABLES) {
            if (args.has(name)) {
                throw ApiError.invalid("chat_template_kwargs", "`chat_template_kwargs` may not set `" + name
                        + "`: the server sets it");
            }
        }
        return MAPPER.convertValue(args, java.util.LinkedHashMap.class);
    }

    /**
     * The rule {@code response_format} sets: none for text, any JSON object for json_object, a value its schema
     * accepts for json_schema (a schema with keywords the rule cannot keep is refused, naming them, rather than
     * half enforced).
     */
    @SuppressWarnings("unchecked")
    private static Supplier<TokenConstraint> responseFormat(JsonNode body) {
        JsonNode format = body.get("response_format");
        if (format == null || format.isNull()) {
            return null;
        }
        if (!format.isObject() || !format.path("type").isTextual()) {
            throw ApiError.invalid("response_format", "`response_format` must be an object with a `type`");
        }
        return switch (format.get("type").asText()) {
            case "text" -> null;
            case "json_object" -> JsonSchemaConstraint::anyObject;
            case "json_schema" -> schema(format.path("json_schema").path("schema"),
                    "response_format.json_schema.schema");
            default -> throw ApiError.invalid("response_format", "`response_format` " + format.get("type")
                    + " is not supported (\"text\", \"json_object\" and \"json_schema\" are)");
        };
    }

    /** A JSON Schema's rule; {@code field} names where the request gave it. */
    private static Supplier<TokenConstraint> schema(JsonNode schema, String field) {
        if (!schema.isObject()) {
            throw ApiError.invalid(field, "`" + field + "` must be a JSON Schema object");
        }
        try {
            return JsonSchemaConstraint.compile(MAPPER.convertValue(schema, java.util.LinkedHashMap.class));
        } catch (JsonSchemaConstraint.UnsupportedSchemaException e) {
            throw ApiError.invalid(field, "`" + field + "` " + e.getMessage());
        }
    }

    /**
     * The rule the reply must follow: OpenAI's {@code response_format}, or llama.cpp's {@code grammar} (GBNF) or
     * {@code json_schema} (a schema given directly); at most one of them. Null for none.
     */
    private static Supplier<TokenConstraint> outputRule(JsonNode body) {
        List<String> given = java.util.stream.Stream.of("response_format", "grammar", "json_schema")
                .filter(f -> present(body, f) && !(f.equals("grammar") && body.get(f).asText("x").isEmpty()))
                .toList();
        if (given.size() > 1) {
            throw ApiError.invalid(given.get(1), "give one of `response_format`, `grammar` and `json_schema`, not "
                    + String.join(" and ", given));
        }
        if (given.contains("json_schema")) {
            return schema(body.get("json_schema"), "json_schema");
        }
        if (given.contains("grammar")) {
            if (!body.get("grammar").isTextual()) {
                throw ApiError.invalid("grammar", "`grammar` must be a string (GBNF, as llama.cpp takes it)");
            }
            try {
                return GrammarConstraint.compile(body.get("grammar").asText());
            } catch (IllegalArgumentException e) {
                throw ApiError.invalid("grammar", "`grammar` " + e.getMessage());
            }
        }
        return responseFormat(body);
    }

    private static final java.util.regex.Pattern FUNCTION_NAME = java.util.regex.Pattern.compile("[A-Za-z0-9_-]{1,64}");

    /**
     * The functions tool_choice makes the model call: all the tools for "required", the one it names, or none
     * ("auto", "none", absent).
     */
    private static List<String> requiredFunctions(JsonNode body, List<Map<String, Object>> tools) {
        JsonNode choice = body.get("tool_choice");
        if (choice == null || choice.isNull() || choice.isTextual() && !choice.asText().equals("required")) {
            return List.of();
        }
        List<String> names = names(tools);
        if (names.isEmpty()) {
            throw ApiError.invalid("tool_choice", "`tool_choice` asks for a call, but `tools` offers no function");
        }
        if (choice.isTextual()) {
            return names;
        }
        JsonNode name = choice.path("function").path("name");
        if (!"function".equals(choice.path("type").asText()) || !name.isTextual()) {
            throw ApiError.invalid("tool_choice", "`tool_choice` must be {\"type\": \"function\", \"function\": "
                    + "{\"name\": ...}}");
        }
        if (!names.contains(name.asText())) {
            throw ApiError.invalid("tool_choice.function.name", "`tool_choice.function.name` '" + name.asText()
                    + "' is not one of the tools " + names);
        }
        return List.of(name.asText());
    }

    /** The names of the functions offered, in the request's order. */
    List<String> toolNames() {
        return names(tools);
    }

    private static List<String> names(List<Map<String, Object>> tools) {
        return tools.stream().map(t -> String.valueOf(((Map<?, ?>) t.get("function")).get("name"))).toList();
    }

    /** The request's tools, checked as OpenAI checks them; none when tool_choice is "none". */
    private static List<Map<String, Object>> tools(JsonNode body) {
        JsonNode choice = body.get("tool_choice");
        if (choice != null && !choice.isNull() && !choice.isObject()
                && (!choice.isTextual() || !List.of("auto", "none", "required").contains(choice.asText()))) {
            throw ApiError.invalid("tool_choice", "`tool_choice` must be \"auto\", \"none\", \"required\" or "
                    + "{\"type\": \"function\", \"function\": {\"name\": ...}}");
        }
        JsonNode list = body.get("tools");
        if (list == null || list.isNull()) {
            return List.of();
        }
        if (!list.isArray()) {
            throw ApiError.invalid("tools", "`tools` must be an array");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        java.util.Set<String> names = new java.util.HashSet<>();
        for (int i = 0; i < list.size(); i++) {
            String where = "tools[" + i + "]";
            JsonNode tool = list.get(i);
            if (!tool.isObject() || !"function".equals(tool.path("type").asText())) {
                throw ApiError.invalid(where, "`" + where + "` must be an object of type \"function\"");
            }
            JsonNode function = tool.get("function");
            if (function == null || !function.isObject()) {
                throw ApiError.invalid(where + ".function", "`" + where + ".function` must be an object");
            }
            JsonNode name = function.get("name");
            if (name == null || !name.isTextual() || !FUNCTION_NAME.matcher(name.asText()).matches()) {
                throw ApiError.invalid(where + ".function.name", "`" + where + ".function.name` must be 1 to 64 "
                        + "letters, digits, underscores or dashes");
            }
            if (!names.add(name.asText())) {
                throw ApiError.invalid(where + ".function.name", "`" + where + ".function.name`: two tools are "
                        + "named " + name.asText());
            }
            JsonNode parameters = function.get("parameters");
            if (parameters != null && !parameters.isNull() && !parameters.isObject()) {
                throw ApiError.invalid(where + ".function.parameters", "`" + where
                        + ".function.parameters` must be a JSON Schema object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> map = MAPPER.convertValue(tool, java.util.LinkedHashMap.class);
            out.add(map);
        }
        return choice != null && choice.isTextual() && choice.asText().equals("none") ? List.of() : out;
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper MAPPER =
            new com.fasterxml.jackson.databind.ObjectMapper();

    static boolean present(JsonNode body, String field) {
        return body.has(field) && !body.get(field).isNull();
    }

    static String optionalText(JsonNode body, String field) {
        return optionalText(body, field, null);
    }

    /** A string field of the object at {@code where} (null for the body itself), or null when absent. */
    private static String optionalText(JsonNode body, String field, String where) {
        if (!present(body, field)) {
            return null;
        }
        String name = where == null ? field : where + "." + field;
        if (!body.get(field).isTextual()) {
            throw ApiError.invalid(name, "`" + name + "` must be a string");
        }
        return body.get(field).asText();
    }

    /**
     * Completions' {@code prompt}: a string, token ids ({@code [ids]}), or a batch of either ({@code [strings]},
     * {@code [[ids], ...]}); absent, the empty string (BOS alone).
     */
    private static List<Prompt> prompts(JsonNode p) {
        if (p == null || p.isNull()) {
            return List.of(new Prompt("", null));
        }
        if (p.isTextual()) {
            return List.of(new Prompt(p.asText(), null));
        }
        String shape = "`prompt` must be a string, token ids, or an array of strings or of token id arrays";
        if (!p.isArray() || p.isEmpty()) {
            throw ApiError.invalid("prompt", shape);
        }
        if (p.get(0).isIntegralNumber()) {
            return List.of(new Prompt(null, tokenIds(p, "prompt", "prompt")));
        }
        if (p.size() > MAX_CHOICES) {
            throw ApiError.invalid("prompt", "`prompt` may batch at most " + MAX_CHOICES + " prompts");
        }
        List<Prompt> out = new ArrayList<>();
        boolean text = p.get(0).isTextual();
        for (int i = 0; i < p.size(); i++) {
            JsonNode e = p.get(i);
            if (text && e.isTextual()) {
                out.add(new Prompt(e.asText(), null));
            } else if (!text && e.isArray() && !e.isEmpty()) {
                out.add(new Prompt(null, tokenIds(e, "prompt", "prompt[" + i + "]")));
            } else {
                throw ApiError.invalid("prompt", shape + " (not both)");
            }
        }
        return List.copyOf(out);
    }

    /**
     * Token ids, the array {@code p} at {@code where} of request field {@code field}: non-negative integers (their
     * range is checked by {@link #inVocabulary}, by whoever knows the vocabulary).
     */
    static int[] tokenIds(JsonNode p, String field, String where) {
        int[] ids = new int[p.size()];
        for (int i = 0; i < ids.length; i++) {
            JsonNode id = p.get(i);
            if (!id.isIntegralNumber() || !id.canConvertToInt() || id.asInt() < 0) {
                throw ApiError.invalid(field, "`" + where + "` token " + i + " must be a token id (a "
                        + "non-negative integer), not " + id);
            }
            ids[i] = id.asInt();
        }
        return ids;
    }

    /** Refuses (400, naming the field) a token id of {@link #tokenIds} outside a vocabulary of {@code size}. */
    static void inVocabulary(int[] ids, int size, String field, String where) {
        for (int id : ids) {
            if (id >= size) {
                throw ApiError.invalid(field, "`" + where + "` token id " + id + " is outside the vocabulary (0.."
                        + (size - 1) + ")");
            }
        }
    }

    /** Chat's {@code messages}, checked: each names its fault by its place in the list. */
    static List<ChatTemplate.Message> messages(JsonNode body) {
        JsonNode list = body.get("messages");
        if (list == null || list.isNull()) {
            throw ApiError.invalid("messages", "`messages` is required");
        }
        if (!list.isArray() || list.isEmpty()) {
            throw ApiError.invalid("messages", "`messages` must be a non-empty array");
        }
        List<ChatTemplate.Message> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) {
                throw ApiError.invalid(where, "`" + where + "` must be an object");
            }
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual() || !ROLES.contains(role.asText())) {
                throw ApiError.invalid(where + ".role", "`" + where + ".role` must be one of " + ROLES);
            }
            out.add(new ChatTemplate.Message(role.asText(), content(m.get("content"), where + ".content"),
                    toolCalls(m.get("tool_calls"), where + ".tool_calls"), optionalText(m, "tool_call_id", where),
                    optionalText(m, "name", where), optionalText(m, "reasoning_content", where)));
        }
        return out;
    }

    /** An assistant message's calls: {@code [{"id", "type": "function", "function": {"name", "arguments"}}]}. */
    private static List<ToolCall> toolCalls(JsonNode list, String where) {
        if (list == null || list.isNull()) {
            return List.of();
        }
        if (!list.isArray()) {
            throw ApiError.invalid(where, "`" + where + "` must be an array");
        }
        List<ToolCall> out = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            String at = where + "[" + i + "]";
            JsonNode call = list.get(i);
            JsonNode function = call.get("function");
            if (!call.isObject() || function == null || !function.isObject() || !function.path("name").isTextual()) {
                throw ApiError.invalid(at, "`" + at + "` must be {\"id\", \"type\": \"function\", \"function\": "
                        + "{\"name\", \"arguments\"}}");
            }
            JsonNode arguments = function.get("arguments");
            if (arguments != null && !arguments.isNull() && !arguments.isTextual()) {
                throw ApiError.invalid(at + ".function.arguments", "`" + at + ".function.arguments` must be a "
                        + "string (the arguments' JSON)");
            }
            String id = optionalText(call, "id", at);
            out.add(new ToolCall(id == null ? ToolCall.newId() : id, function.get("name").asText(),
                    arguments == null || arguments.isNull() ? "{}" : arguments.asText()));
        }
        return List.copyOf(out);
    }

    /** A message's content: a string, null, or an array of text parts (joined). */
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (int i = 0; i < c.size(); i++) {
                JsonNode part = c.get(i);
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiError.invalid(where + "[" + i + "]", "`" + where + "[" + i + "]` must be a text part "
                            + "({\"type\": \"text\", \"text\": ...}); only text is supported");
                }
                sb.append(part.get("text").asText());
            }
            return sb.toString();
        }
        throw ApiError.invalid(where, "`" + where + "` must be a string or an array of text parts");
    }

    /**
     * OpenAI allows 4; llama.cpp and vLLM any number, and lm-eval sends a task's stop strings and the model's end of
     * text, often more than 4.
     */
    static final int MAX_STOP_STRINGS = 16;

    private static List<String> stop(JsonNode body) {
        JsonNode s = body.get("stop");
        if (s == null || s.isNull()) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (s.isTextual()) {
            out.add(s.asText());
        } else if (s.isArray() && s.size() <= MAX_STOP_STRINGS) {
            for (JsonNode e : s) {
                if (!e.isTextual()) {
                    throw ApiError.invalid("stop", "`stop` must be a string or an array of up to "
                            + MAX_STOP_STRINGS + " strings");
                }
                out.add(e.asText());
            }
        } else {
            throw ApiError.invalid("stop", "`stop` must be a string or an array of up to "
                    + MAX_STOP_STRINGS + " strings");
        }
        if (out.stream().anyMatch(String::isEmpty)) {
            throw ApiError.invalid("stop", "`stop` strings may not be empty");
        }
        return out;
    }

    static Integer optionalInt(JsonNode body, String field, int min, int max) {
        if (!present(body, field)) {
            return null;
        }
        JsonNode v = body.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw ApiError.invalid(field, "`" + field + "` must be an integer");
        }
        int i = v.asInt();
        if (i < min || i > max) {
            throw ApiError.invalid(field, "`" + field + "` must be in " + min + ".." + max + ", not " + i);
        }
        return i;
    }

    private static long longValue(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw ApiError.invalid(field, "`" + field + "` must be an integer");
        }
        return v.asLong();
    }

    private static double optionalNumber(JsonNode body, String field, double min, double max, double dflt) {
        if (!present(body, field)) {
            return dflt;
        }
        JsonNode v = body.get(field);
        if (!v.isNumber()) {
            throw ApiError.invalid(field, "`" + field + "` must be a number");
        }
        double d = v.asDouble();
        if (!(d >= min && d <= max)) {
            throw ApiError.invalid(field, "`" + field + "` must be in [" + min + ", " + max + "], not " + d);
        }
        return d;
    }

    static boolean optionalBoolean(JsonNode body, String field, boolean dflt) {
        if (!present(body, field)) {
            return dflt;
        }
        if (!body.get(field).isBoolean()) {
            throw ApiError.invalid(field, "`" + field + "` must be true or false");
        }
        return body.get(field).asBoolean();
    }
}
