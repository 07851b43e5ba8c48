package io.bitplane.format;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.HashSet;
import java.util.List;

/**
 * Streams a .bpm file to disk: the tensor list is declared up front (sizes follow from the specs), then each
 * tensor's bytes are written in order as they are produced, so a whole model is never held in memory. The file is
 * written under a temporary name beside the target and moved into place by {@link #finish()}, so a failed or
 * interrupted conversion never destroys an existing file.
 */
public final class BpmWriter implements AutoCloseable {
    private final Path target;
    private final Path temp;
    private final FileChannel channel;
    private final List<TensorSpec> specs;
    private final long[] offsets;
    private final int[] crcs;
    private final byte[] metadata;
    private final int flags;
    private final int directoryBytes;
    private int next;
    private boolean finished;

    private BpmWriter(Path target, ModelMetadata metadata, List<TensorSpec> specs) throws IOException {
        this.target = target;
        this.specs = List.copyOf(specs);
        this.metadata = MetadataJson.write(metadata);
        this.flags = BpmLayout.flagsOf(metadata);
        HashSet<String> names = new HashSet<>();
        int dir = 4;
        for (TensorSpec s : this.specs) {
            String problem = s.problem();
            if (problem != null) {
                throw new IllegalArgumentException("tensor " + s.name() + ": " + problem);
            }
            if (!names.add(s.name())) {
                throw new IllegalArgumentException("tensor " + s.name() + " is declared twice");
            }
            int nameBytes = s.name().getBytes(StandardCharsets.UTF_8).length;
            if (nameBytes > BpmLayout.MAX_NAME) {
                throw new IllegalArgumentException("tensor name longer than " + BpmLayout.MAX_NAME + " bytes: "
                        + s.name());
            }
            dir += BpmLayout.entryBytes(nameBytes, s.rank());
        }
        this.directoryBytes = dir;
        this.offsets = new long[this.specs.size()];
        this.crcs = new int[this.specs.size()];
        long offset = dataOffset();
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = offset;
            offset = TensorSpec.align64(offset + this.specs.get(i).byteLength());
        }
        Path dirPath = target.toAbsolutePath().getParent();
        Files.createDirectories(dirPath);
        this.temp = Files.createTempFile(dirPath, "." + target.getFileName() + ".", ".partial");
        try {
            // Temporary files are created private (0600); the finished model is an ordinary file.
            Files.setPosixFilePermissions(temp, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        } catch (UnsupportedOperationException e) {
            // not a POSIX file system: keep its defaults
        }
        this.channel = FileChannel.open(temp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
    }

    /** Starts a file at {@code target} that will hold exactly {@code specs}, in that order. */
    public static BpmWriter create(Path target, ModelMetadata metadata, List<TensorSpec> specs) throws IOException {
        return new BpmWriter(target, metadata, specs);
    }

    public List<TensorSpec> specs() {
        return specs;
    }

    private long dataOffset() {
        return TensorSpec.align64(BpmLayout.FIXED_HEADER + (long) metadata.length + directoryBytes);
    }

    /** Writes the next declared tensor; its spec must equal the declared one. */
    public void write(EncodedTensor tensor) throws IOException {
        if (next >= specs.size()) {
            throw new IllegalStateException("all " + specs.size() + " declared tensors are already written");
        }
        TensorSpec expected = specs.get(next);
        if (!expected.equals(tensor.spec())) {
            throw new IllegalArgumentException("tensor " + next + " was declared as " + expected + ", got "
                    + tensor.spec());
        }
        crcs[next] = Crc32c.of(tensor.segment());
        ByteBuffer buf = ByteBuffer.wrap(tensor.bytes());
        long pos = offsets[next];
        while (buf.hasRemaining()) {
            pos += channel.write(buf, pos);
        }
        next++;
    }

    /** Writes the header and directory, flushes, and moves the file into place. */
    public void finish() throws IOException {
        if (next != specs.size()) {
            throw new IllegalStateException("only " + next + " of " + specs.size() + " declared tensors written");
        }
        ByteBuffer header = ByteBuffer.allocate(BpmLayout.FIXED_HEADER + metadata.length + directoryBytes)
                .order(ByteOrder.LITTLE_ENDIAN);
        header.put(BpmLayout.MAGIC).putInt(BpmLayout.VERSION).putInt(flags).putLong(metadata.length)
                .putLong(directoryBytes).putLong(dataOffset()).putInt(0).putInt(0);
        header.put(metadata);
        header.putInt(specs.size());
        for (int i = 0; i < specs.size(); i++) {
            TensorSpec s = specs.get(i);
            byte[] name = s.name().getBytes(StandardCharsets.UTF_8);
            header.putShort((short) name.length).put(name);
            header.put((byte) s.encoding().id).put((byte) s.layout()).put((byte) s.activations().id)
                    .put((byte) s.rank()).putInt(s.groupSize());
            for (long d : s.shape()) {
                header.putLong(d);
            }
            header.putLong(offsets[i]).putLong(s.byteLength()).putInt(crcs[i]);
        }
        MemorySegment h = MemorySegment.ofArray(header.array());
        int crc = Crc32c.of(h.asSlice(0, BpmLayout.CRC_FIELD), h.asSlice(BpmLayout.FIXED_HEADER));
        header.putInt(BpmLayout.CRC_FIELD, crc);
        header.rewind();
        long pos = 0;
        while (header.hasRemaining()) {
            pos += channel.write(header, pos);
        }
        long end = specs.isEmpty() ? dataOffset() : offsets[specs.size() - 1] + specs.getLast().byteLength();
        if (channel.size() < end) {
            channel.write(ByteBuffer.allocate(1), end - 1);
        }
        channel.truncate(end);
        channel.force(true);
        channel.close();
        try {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
        }
        finished = true;
    }

    /** Abandons an unfinished file (its temporary is deleted); after {@link #finish()} it does nothing. */
    @Override
    public void close() throws IOException {
        if (!finished) {
            channel.close();
            Files.deleteIfExists(temp);
        }
    }
}
