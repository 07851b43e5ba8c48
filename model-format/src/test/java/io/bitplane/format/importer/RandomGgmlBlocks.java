package io.bitplane.format.importer;

import io.bitplane.format.Halfs;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Blocks of a ggml type for tests: random bytes (every code and sub-scale pattern is a valid block), with the
 * block's f16 scales (d, and dmin or m where the type has them) set so that no value exceeds about
 * {@code amplitude}: random bytes there would be any f16, infinities and NaN included.
 */
public final class RandomGgmlBlocks {
    private RandomGgmlBlocks() {
    }

    public static byte[] of(GgmlType type, long count, float amplitude, Random rnd) {
        if (count % type.blockSize != 0) {
            throw new IllegalArgumentException(count + " values are not whole " + type + " blocks");
        }
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(count / type.blockSize * type.blockBytes))
                .order(ByteOrder.LITTLE_ENDIAN);
        rnd.nextBytes(b.array());
        float reach = switch (type) {  // the largest |sub-scale x code| a block can hold, per unit of d
            case Q4_0 -> 8;
            case Q4_1 -> 15;
            case Q5_0 -> 16;
            case Q5_1 -> 31;
            case Q8_0 -> 127;
            case Q2_K -> 45;
            case Q3_K -> 128;
            case Q4_K -> 945;
            case Q5_K -> 1953;
            case Q6_K -> 4096;
            case IQ4_NL -> 127;
            case IQ4_XS -> 4064;
            default -> throw new IllegalArgumentException(type + " has no random blocks here");
        };
        int[] scaleOffsets = switch (type) {
            case Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS -> new int[] {0};
            case Q4_1, Q5_1, Q4_K, Q5_K -> new int[] {0, 2};
            case Q2_K -> new int[] {80, 82};
            case Q3_K -> new int[] {108};
            case Q6_K -> new int[] {208};
            default -> throw new IllegalStateException();
        };
        for (int at = 0; at < b.capacity(); at += type.blockBytes) {
            for (int i = 0; i < scaleOffsets.length; i++) {
                float d = amplitude / reach * (0.5f + 0.5f * rnd.nextFloat());
                if (scaleOffsets.length == 1 && rnd.nextBoolean()) {
                    d = -d;  // symmetric types take a scale of either sign
                }
                if (i == 1 && (type == GgmlType.Q4_1 || type == GgmlType.Q5_1)) {
                    d *= -reach / 2;  // m is the block's least value, not a step
                }
                b.putShort(at + scaleOffsets[i], Halfs.floatToF16(d));
            }
        }
        return b.array();
    }
}
