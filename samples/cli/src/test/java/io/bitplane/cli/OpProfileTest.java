package io.bitplane.cli;

import io.bitplane.format.Encoding;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.Weights;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class OpProfileTest {
    private static Weights[] named(String... names) {
        Weights[] ws = new Weights[names.length];
        for (int i = 0; i < names.length; i++) {
            TensorSpec spec = TensorSpec.of(names[i], Encoding.F32, 0, 2, 2);
            ws[i] = () -> spec;
        }
        return ws;
    }

    /** A job's row in the profile names its tensors once, layer left out, the parts they share said once. */
    @Test
    void aJobIsNamedByWhatItsTensorsDoNotShare() {
        assertEquals("blk.N.{attn_q,attn_k,attn_v}.weight",
                OpProfile.jointName(named("blk.3.attn_q.weight", "blk.3.attn_k.weight", "blk.3.attn_v.weight")));
        assertEquals("blk.N.{ffn_gate,ffn_up}.weight",
                OpProfile.jointName(named("blk.12.ffn_gate.weight", "blk.12.ffn_up.weight")));
        assertEquals("{output,token_embd}.weight", OpProfile.jointName(named("output.weight", "token_embd.weight")));
        assertEquals("{a,b}", OpProfile.jointName(named("a", "b")));
        assertEquals("{w.x,w}", OpProfile.jointName(named("w.x", "w")));
        assertEquals("blk.N.attn_q.weight", OpProfile.jointName(named("blk.0.attn_q.weight")));
    }
}
