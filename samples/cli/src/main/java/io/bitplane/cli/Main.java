package io.bitplane.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The {@code bitplane} command. Each subcommand lives in its own class; this one only wires them and turns every
 * failure into one line on stderr and a non-zero exit (1 for a failure, 2 for a usage error), never a stack trace
 * unless BITPLANE_DEBUG is set.
 */
@Command(name = "bitplane", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Low-bit LLM inference for the JVM.",
        subcommands = {GenerateCommand.class, ChatCommand.class, PerplexityCommand.class, DemoCommand.class,
                ConvertCommand.class, SynthCommand.class, PlanCommand.class, BenchCommand.class, ServeCommand.class, LoadCommand.class,
                InspectCommand.class, VerifyCommand.class, DevicesCommand.class, EmbedCommand.class})
public final class Main {

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns its exit code (for tests: nothing here calls System.exit). */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, cmd, parsed) -> {
            cmd.getErr().println("bitplane " + cmd.getCommandName() + ": " + describe(e));
            if (System.getenv("BITPLANE_DEBUG") != null) {
                e.printStackTrace(cmd.getErr());
            }
            return 1;
        });
        return cli.execute(args);
    }

    /** One line that says what went wrong, for the errors a user can cause (bad files, bad options). */
    static String describe(Throwable e) {
        Throwable t = e instanceof UncheckedIOException u ? u.getCause() : e;
        if (t instanceof java.nio.file.NoSuchFileException n) {
            return n.getFile() + ": " + (n.getReason() != null ? n.getReason() : "no such file");
        }
        if (t instanceof java.nio.file.AccessDeniedException a) {
            return a.getFile() + ": permission denied";
        }
        if (t instanceof IOException || t instanceof IllegalArgumentException) {
            return t.getMessage();
        }
        return "internal error: " + t + " (set BITPLANE_DEBUG=1 for a stack trace)";
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"bitplane " + (v == null ? "(development build)" : v)};
        }
    }
}
