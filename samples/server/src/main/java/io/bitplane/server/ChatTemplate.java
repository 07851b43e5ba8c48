package io.bitplane.server;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.bitplane.runtime.FunctionCallConstraint;
import io.bitplane.runtime.JsonSchemaConstraint;
import io.bitplane.runtime.TokenConstraint;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns chat messages into a prompt with a Jinja chat template, as Hugging Face and llama.cpp do: the model's own
 * ({@code tokenizer.chat_template} of a GGUF file) when it carries one, else {@link #DEFAULT}. The variables are
 * {@code messages} (each with {@code role} and {@code content}, and {@code tool_calls}, {@code tool_call_id} and
 * {@code name} where the request gives them), {@code tools} when the request offers some,
 * {@code add_generation_prompt}, {@code bos_token} and {@code eos_token}, and {@code raise_exception(message)} and
 * {@code strftime_now(format)} are defined. The tokenizer adds BOS itself, so a BOS the template writes at the
 * very start is dropped (as llama.cpp does).
 *
 * <p>Templates are written for Hugging Face's Jinja (Python); {@link HuggingFaceJinja} sets Jinjava up to render
 * them as it does (Qwen3's, Llama 3.2's and ChatML templates: the tests).
 */
public final class ChatTemplate {
    /**
     * For models without a template: plain turns a story or base model can continue. Contents are trimmed: a
     * reply begins with the space the model wrote after "Assistant:", which must not be doubled when the reply
     * comes back in the next turn's prompt (that prompt would no longer begin with the last one, for the cache).
     */
    static final String DEFAULT = "{% for m in messages %}"
            + "{% if m.role == 'system' %}{{ m.content | trim }}\n\n"
            + "{% elif m.role == 'user' %}User: {{ m.content | trim }}\n"
            + "{% else %}Assistant: {{ m.content | trim }}\n{% endif %}"
            + "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";

    private final Jinjava jinjava;
    private final String template;
    /** The template as the model (or the default) gives it, before {@link HuggingFaceJinja#adapt}. */
    private final String source;
    private final String bos;
    private final String eos;
    private final boolean own;

    /**
     * A message of the conversation: an assistant's may carry the calls it made and its thinking
     * ({@code reasoning_content}), a tool's the id of the call it answers and the function's name (null when
     * absent).
     */
    public record Message(String role, String content, List<ToolCall> toolCalls, String toolCallId, String name,
                          String reasoning) {
        public Message(String role, String content) {
            this(role, content, List.of(), null, null, null);
        }

        Message(String role, String content, List<ToolCall> toolCalls, String toolCallId, String name) {
            this(role, content, toolCalls, toolCallId, name, null);
        }
    }

    private ChatTemplate(String template, String bos, String eos, boolean own) {
        this.jinjava = HuggingFaceJinja.newEngine();
        this.jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        this.template = HuggingFaceJinja.adapt(template);
        this.source = template;
        this.bos = bos;
        this.eos = eos;
        this.own = own;
    }

    /**
     * The model's template if it has one that renders a simple conversation, else the default; {@code warning}
     * receives one line when the model's template had to be set aside.
     */
    static ChatTemplate forModel(String modelTemplate, String bos, String eos,
                                 java.util.function.Consumer<String> warning) {
        if (modelTemplate != null && !modelTemplate.isBlank()) {
            ChatTemplate t = new ChatTemplate(modelTemplate, bos, eos, true);
            try {
                t.render(List.of(new Message("system", "s"), new Message("user", "u")));
                return t;
            } catch (IllegalArgumentException e) {
                warning.accept("the model's chat template does not render (" + e.getMessage()
                        + "); using the default template");
            }
        }
        return new ChatTemplate(DEFAULT, bos, eos, false);
    }

    /**
     * The template of {@code model}'s vocabulary (its BOS and EOS tokens' texts as bos_token and eos_token), as
     * {@link #forModel(String, String, String, java.util.function.Consumer)} chooses it.
     */
    public static ChatTemplate forModel(io.bitplane.runtime.Model model,
                                        java.util.function.Consumer<String> warning) {
        io.bitplane.format.Vocabulary v = model.metadata().vocabulary();
        return forModel(v == null ? null : v.chatTemplate(), tokenText(v, true), tokenText(v, false), warning);
    }

    private static String tokenText(io.bitplane.format.Vocabulary v, boolean bos) {
        if (v == null) {
            return "";
        }
        int id = bos ? v.bosId() : v.eosId();
        return id >= 0 && id < v.size() ? new String(v.tokens().get(id), java.nio.charset.StandardCharsets.UTF_8) : "";
    }

    /** The template's Jinja text, as the model gives it (or the default's). */
    public String source() {
        return source;
    }

    /** Whether the template is the model's own. */
    public boolean isModelTemplate() {
        return own;
    }

    /**
     * Strings that end the assistant's turn in this template's text: for the default template, the next turn's
     * "User:" line, which a base model goes on to write (models' own templates end turns with a token instead).
     */
    public List<String> stopStrings() {
        return own ? List.of() : List.of("\nUser:");
    }

    /** Whether the template writes the tools it is given (else {@link #render} describes them itself). */
    boolean writesTools() {
        return template.contains("tools");
    }

    /** How the model this template belongs to writes a function call. */
    ToolCallParser.Format toolCallFormat() {
        return template.contains("<tool_call>") ? ToolCallParser.Format.TAGGED : ToolCallParser.Format.JSON;
    }

    /**
     * A call of one of {@code functions} in the form this template teaches, as a constraint on the reply (for
     * tool_choice "required" or naming a function): Qwen's tool_call block, else the JSON Llama 3's template asks
     * for (its arguments under "parameters") or {@link GenericTools}' (under "arguments"). The arguments follow
     * the function's parameters schema where {@link JsonSchemaConstraint} can keep it, else they are a JSON object.
     *
     * @param tools the request's tools, where the functions' parameters are
     */
    java.util.function.Supplier<TokenConstraint> callOf(List<String> functions, List<Map<String, Object>> tools) {
        String arguments = writesTools() && template.contains("\"parameters\"") ? "parameters" : "arguments";
        String infix = "\", \"" + arguments + "\": ";
        List<java.util.function.Supplier<TokenConstraint>> rules = functions.stream().map(f -> argumentsOf(f, tools))
                .toList();
        if (writesTools() && toolCallFormat() == ToolCallParser.Format.TAGGED) {
            return () -> new FunctionCallConstraint(ToolCallParser.OPEN + "\n{\"name\": \"", functions, infix,
                    "}\n" + ToolCallParser.CLOSE, rules);
        }
        return () -> new FunctionCallConstraint("{\"name\": \"", functions, infix, "}", rules);
    }

    /** The rule {@code function}'s arguments follow: its parameters schema where it can be kept, else any object. */
    private static java.util.function.Supplier<TokenConstraint> argumentsOf(String function,
                                                                          List<Map<String, Object>> tools) {
        for (Map<String, Object> tool : tools) {
            if (tool.get("function") instanceof Map<?, ?> f && function.equals(f.get("name"))
                    && f.get("parameters") instanceof Map<?, ?> parameters) {
                try {
                    @SuppressWarnings("unchecked")
                    Map<String, Object> schema = (Map<String, Object>) parameters;
                    return JsonSchemaConstraint.compile(schema);
                } catch (JsonSchemaConstraint.UnsupportedSchemaException e) {
                    return JsonSchemaConstraint::anyObject;  // a schema it cannot keep: still an object
                }
            }
        }
        return JsonSchemaConstraint::anyObject;
    }

    /** Whether the model thinks before it answers, in {@code <think>} (Qwen3, QwQ, DeepSeek-R1). */
    boolean thinks() {
        return template.contains(AssistantReply.OPEN);
    }

    /** The prompt for {@code messages}, ending where the assistant's reply begins. */
    public String render(List<Message> messages) {
        return render(messages, List.of(), Map.of());
    }

    /** The prompt for {@code messages} with {@code tools} offered. */
    String render(List<Message> messages, List<Map<String, Object>> tools) {
        return render(messages, tools, Map.of());
    }

    /**
     * The prompt for {@code messages} with {@code tools} (OpenAI's tool objects, as JSON maps) offered to the model
     * and {@code arguments} (a request's chat_template_kwargs, such as Qwen3's enable_thinking) set in the template.
     * A template that does not write tools (the default, Llama 2's) gets them as {@link GenericTools} writes them.
     */
    String render(List<Message> messages, List<Map<String, Object>> tools, Map<String, Object> arguments) {
        if (!tools.isEmpty() && !writesTools()) {
            messages = GenericTools.describe(messages, tools);
            tools = List.of();
        }
        Map<String, Object> context = new HashMap<>(arguments);
        context.put("messages", messages.stream().map(ChatTemplate::templateMessage).toList());
        if (!tools.isEmpty()) {
            context.put("tools", tools);
        }
        context.put("add_generation_prompt", true);
        context.put("bos_token", bos);
        context.put("eos_token", eos);
        context.put("strftime_now", "strftime_now");  // so that "strftime_now is defined" holds, as in Hugging Face
        RenderResult result = jinjava.renderForResult(template, context);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new IllegalArgumentException("chat template: " + raisedMessage(e));
            }
        }
        String prompt = result.getOutput();
        return !bos.isEmpty() && prompt.startsWith(bos) ? prompt.substring(bos.length()) : prompt;
    }

    /**
     * A message as Hugging Face gives it to templates: {@code tool_calls} only when there are calls (Llama 3 tests
     * {@code 'tool_calls' in message}), each call's arguments as a JSON object (Llama 3 writes them with tojson).
     */
    private static Map<String, Object> templateMessage(Message m) {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("role", m.role());
        map.put("content", m.content());
        if (!m.toolCalls().isEmpty()) {
            map.put("tool_calls", m.toolCalls().stream().map(c -> {
                Map<String, Object> call = new LinkedHashMap<>();
                call.put("id", c.id());
                call.put("type", "function");
                call.put("function", functionMap(c));
                return call;
            }).toList());
        }
        if (m.toolCallId() != null) {
            map.put("tool_call_id", m.toolCallId());
        }
        if (m.name() != null) {
            map.put("name", m.name());
        }
        if (m.reasoning() != null) {
            map.put("reasoning_content", m.reasoning());
        }
        return map;
    }

    /** {@code {"name": ..., "arguments": {...}}}: the arguments as a JSON object when they are one, else their text. */
    static Map<String, Object> functionMap(ToolCall c) {
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", c.name());
        try {
            function.put("arguments", JSON.readValue(c.arguments(), LinkedHashMap.class));
        } catch (java.io.IOException e) {
            function.put("arguments", c.arguments());
        }
        return function;
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
            new com.fasterxml.jackson.databind.ObjectMapper();

    /** What the template's raise_exception said, if that is what failed; else Jinjava's message. */
    private static String raisedMessage(TemplateError e) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (t instanceof IllegalArgumentException && t.getStackTrace().length > 0
                    && t.getStackTrace()[0].getMethodName().equals("raiseException")) {
                return t.getMessage();
            }
        }
        return e.getMessage();
    }

    /** The template's {@code raise_exception}: the conversation is not one the template accepts. */
    public static String raiseException(String message) {
        throw new IllegalArgumentException(message);
    }
}
