package io.bitplane.kernels.ffm;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * The header is the source of truth; the bindings are written by hand. This parses every prototype of
 * bitplane_kernels.h and fails when the Java descriptors name other functions, or other types in another order.
 */
class NativeBindingsMatchHeaderTest {
    static final Path HEADER = Path.of("src/main/c/bitplane_kernels.h");
    /** A prototype: return type, name, parameters, up to the semicolon (it may span lines). */
    static final Pattern PROTOTYPE = Pattern.compile("^([A-Za-z_][\\w ]*?\\**)\\s*\\b(bp_\\w+)\\s*\\(([^)]*)\\)\\s*;",
            Pattern.MULTILINE);

    static Map<String, FunctionDescriptor> headerDescriptors(String header) {
        String code = header.replaceAll("(?s)/\\*.*?\\*/", " ");
        Map<String, FunctionDescriptor> found = new LinkedHashMap<>();
        Matcher m = PROTOTYPE.matcher(code);
        while (m.find()) {
            List<MemoryLayout> args = new ArrayList<>();
            String params = m.group(3).trim();
            if (!params.equals("void")) {
                for (String p : params.split(",")) {
                    String decl = p.trim().replaceAll("\\s+", " ");
                    // The type is everything but the parameter's name; a '*' may stick to the name.
                    String type = decl.substring(0, decl.lastIndexOf(' ')) + decl.replaceAll("^.*?(\\**)\\w+$",
                            "$1");
                    args.add(NativeKernels.layoutOf(type));
                }
            }
            String ret = m.group(1).trim();
            MemoryLayout[] a = args.toArray(MemoryLayout[]::new);
            found.put(m.group(2), ret.equals("void") ? FunctionDescriptor.ofVoid(a)
                    : FunctionDescriptor.of(NativeKernels.layoutOf(ret), a));
        }
        return found;
    }

    @Test
    void everyPrototypeOfTheHeaderHasTheSameDescriptorInJava() throws IOException {
        Map<String, FunctionDescriptor> header = headerDescriptors(Files.readString(HEADER));
        assertFalse(header.isEmpty(), "no prototypes parsed from " + HEADER);
        assertEquals(header.keySet(), NativeKernels.DESCRIPTORS.keySet(), "functions of the header and bindings");
        for (var e : header.entrySet()) {
            assertEquals(e.getValue(), NativeKernels.DESCRIPTORS.get(e.getKey()), e.getKey());
        }
    }

    @Test
    void theAbiVersionOfTheHeaderIsTheBindingsVersion() throws IOException {
        Matcher m = Pattern.compile("#define BP_ABI_VERSION (\\d+)").matcher(Files.readString(HEADER));
        assertEquals(true, m.find());
        assertEquals(NativeKernels.ABI_VERSION, Integer.parseInt(m.group(1)));
        NativeAvailability.assumeLoaded();
        assertEquals(NativeKernels.ABI_VERSION, NativeLibrary.kernels().abiVersion(), "the built library's version");
    }

    @Test
    void aChangedPrototypeIsCaught() {
        // The check itself must be able to fail: one parameter type changed in a copy of a prototype.
        String changed = "void bp_matmul_float(const void *w, int64_t encoding, int64_t k, const float *x, float *y,"
                + " int32_t batch,\n int64_t n, int64_t row_start, int64_t row_end);";
        FunctionDescriptor parsed = headerDescriptors(changed).get("bp_matmul_float");
        assertFalse(parsed.equals(NativeKernels.DESCRIPTORS.get("bp_matmul_float")));
    }
}
