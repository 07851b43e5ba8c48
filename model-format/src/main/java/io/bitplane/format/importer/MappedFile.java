package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** A source file mapped read-only for an importer; closing unmaps it. */
final class MappedFile implements AutoCloseable {
    final Path path;
    final MemorySegment segment;
    private final Arena arena;

    MappedFile(Path path) throws IOException {
        this.path = path;
        this.arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            this.segment = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new NoSuchFileException(path.toString(), null, "no such file");
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    long size() {
        return segment.byteSize();
    }

    /** A slice, or an error naming the file and what it should have held. */
    MemorySegment slice(long offset, long length, String what) throws BpmFormatException {
        if (offset < 0 || length < 0 || offset > size() || length > size() - offset) {
            throw new BpmFormatException(path + ": truncated: " + what + " needs bytes [" + offset + ", "
                    + (offset + length) + ") of a " + size() + "-byte file");
        }
        return segment.asSlice(offset, length);
    }

    @Override
    public void close() {
        arena.close();
    }
}
