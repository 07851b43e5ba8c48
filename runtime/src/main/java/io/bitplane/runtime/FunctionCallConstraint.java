package io.bitplane.runtime;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * A function call in a fixed shape, as a {@link TokenConstraint}: {@code prefix}, then one of the function names,
 * then {@code infix}, then a JSON object (the arguments: {@link JsonSchemaConstraint#anyObject} unless a schema is
 * given), then {@code suffix}; for Qwen's form
 * {@code <tool_call>\n{"name": "} NAME {@code ", "arguments": } OBJECT {@code }\n</tool_call>}. It lets a server make
 * a model call a function (OpenAI's tool_choice "required", or one function by name), in the form the model's chat
 * template taught it, so the reply reads back as a call.
 */
public final class FunctionCallConstraint extends ByteAutomaton<FunctionCallConstraint> {
    private static final int PREFIX = 0;
    private static final int NAME = 1;
    private static final int ARGUMENTS = 2;
    private static final int SUFFIX = 3;
    private static final int DONE = 4;

    private final byte[] prefix;
    /** Each function's name followed by the infix: what may follow the prefix. */
    private final List<byte[]> namesThenInfix;
    private final byte[] suffix;

    private int phase = PREFIX;
    private int at;                      // bytes matched in the phase's literal(s)
    private final boolean[] alive;       // the names that agree with what was written of the name so far
    /** Each function's rule for its arguments as it starts (never fed), and the one being written. */
    private final ByteAutomaton<?>[] fresh;
    private final ByteAutomaton<?>[] arguments;
    private int called;

    /** @param names the functions that may be called (at least one; none with the infix in it) */
    public FunctionCallConstraint(String prefix, List<String> names, String infix, String suffix) {
        this(prefix, names, infix, suffix, names.stream().map(n -> (java.util.function.Supplier<TokenConstraint>)
                JsonSchemaConstraint::anyObject).toList());
    }

    /**
     * @param names     the functions that may be called (at least one; none with the infix in it)
     * @param arguments for each function, a factory of the rule its arguments follow: a {@link JsonSchemaConstraint}
     *                  of its parameters, or {@link JsonSchemaConstraint#anyObject}
     */
    public FunctionCallConstraint(String prefix, List<String> names, String infix, String suffix,
                                  List<java.util.function.Supplier<TokenConstraint>> arguments) {
        if (names.isEmpty() || arguments.size() != names.size()) {
            throw new IllegalArgumentException("no function to call, or not one argument rule per function");
        }
        this.fresh = new ByteAutomaton<?>[names.size()];
        this.arguments = new ByteAutomaton<?>[names.size()];
        for (int i = 0; i < names.size(); i++) {
            if (!(arguments.get(i).get() instanceof ByteAutomaton<?> rule)) {
                throw new IllegalArgumentException("the arguments' rule must be JSON's or a JSON schema's");
            }
            this.fresh[i] = rule;
            this.arguments[i] = rule.twin();
        }
        this.prefix = prefix.getBytes(StandardCharsets.UTF_8);
        this.namesThenInfix = new ArrayList<>();
        for (String name : names) {
            namesThenInfix.add((name + infix).getBytes(StandardCharsets.UTF_8));
        }
        for (String a : names) {
            for (String b : names) {
                if (a != b && (b + infix).startsWith(a + infix)) {
                    throw new IllegalArgumentException("function names '" + a + "' and '" + b + "' cannot be told "
                            + "apart before the arguments");
                }
            }
        }
        this.suffix = suffix.getBytes(StandardCharsets.UTF_8);
        this.alive = new boolean[names.size()];
        if (this.prefix.length == 0) {
            startName();
        }
    }

    private void startName() {
        phase = NAME;
        at = 0;
        java.util.Arrays.fill(alive, true);
    }

    @Override
    public boolean complete() {
        return phase == DONE;
    }

    /** A scratch twin: the same literals, its own state. */
    private FunctionCallConstraint(FunctionCallConstraint o) {
        this.prefix = o.prefix;
        this.namesThenInfix = o.namesThenInfix;
        this.suffix = o.suffix;
        this.alive = new boolean[o.alive.length];
        this.fresh = o.fresh;
        this.arguments = new ByteAutomaton<?>[o.arguments.length];
        for (int i = 0; i < arguments.length; i++) {
            arguments[i] = o.arguments[i].twin();
        }
    }

    @Override
    FunctionCallConstraint twin() {
        return new FunctionCallConstraint(this);
    }

    @Override
    void copyFrom(FunctionCallConstraint o) {
        phase = o.phase;
        at = o.at;
        System.arraycopy(o.alive, 0, alive, 0, alive.length);
        called = o.called;
        if (phase == ARGUMENTS) {
            arguments[called].copyStateOf(o.arguments[called]);
        }
    }

    @Override
    boolean feed(int b) {
        switch (phase) {
            case PREFIX -> {
                if (b != (prefix[at] & 0xFF)) {
                    return false;
                }
                if (++at == prefix.length) {
                    startName();
                }
                return true;
            }
            case NAME -> {
                // some name still possible (with the infix after it) must go on with b; one that ends here is the
                // call's (names cannot hold the infix's quote, so none is another's start)
                boolean any = false;
                for (int i = 0; i < alive.length; i++) {
                    byte[] candidate = namesThenInfix.get(i);
                    if (!alive[i] || (candidate[at] & 0xFF) != b) {
                        alive[i] = false;
                        continue;
                    }
                    if (at + 1 == candidate.length) {
                        phase = ARGUMENTS;
                        at = 0;
                        called = i;
                        arguments[i].copyStateOf(fresh[i]);  // a scratch copy may have tried this one before
                        return true;
                    }
                    any = true;
                }
                at++;
                return any;
            }
            case ARGUMENTS -> {
                if (!arguments[called].feed(b)) {
                    return false;
                }
                if (arguments[called].complete()) {
                    phase = suffix.length == 0 ? DONE : SUFFIX;
                }
                return true;
            }
            case SUFFIX -> {
                if (b != (suffix[at] & 0xFF)) {
                    return false;
                }
                if (++at == suffix.length) {
                    phase = DONE;
                }
                return true;
            }
            default -> {
                return false;
            }
        }
    }
}
