using System.Buffers;
using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Images;

namespace DomBoot.Storage.Disks;

/// <summary>Copies a byte range of a guest disk (as the guest sees it) to a stream.</summary>
public static class DiskCopy
{
    public const int ChunkBytes = 2 << 20;

    /// <summary>Writes [offset, offset+length) of the image's guest-visible disk; length -1 means to the end.</summary>
    public static async Task<long> CopyAsync(string imagePath, long offset, long length, Stream output, bool sparse = false,
        CancellationToken cancellationToken = default)
    {
        using var image = DiskImage.Open(imagePath);
        return await CopyAsync(image.Reader, offset, length, output, sparse, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads chunks ahead on the thread pool (the readers are thread-safe; pread and inflate are the cost) while
    /// writing finished chunks in order. With <paramref name="sparse"/> (only for a regular file the caller created),
    /// all-zero chunks are skipped, leaving holes, as qemu-img convert does.
    /// </summary>
    public static async Task<long> CopyAsync(IBlockReader reader, long offset, long length, Stream output, bool sparse = false,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(output);
        if (length < 0) length = Math.Max(0, reader.Length - offset);
        if (offset < 0 || offset > reader.Length || length > reader.Length - offset)
            throw new TruncatedDataException("disk", offset, length, reader.Length - offset);
        int window = Math.Clamp(Environment.ProcessorCount, 1, 4) * 2;
        sparse &= output.CanSeek;
        long start = sparse ? output.Position : 0;
        var pending = new Queue<(Task Read, byte[] Buffer, int Count)>();
        long next = 0;
        try
        {
            while (next < length || pending.Count > 0)
            {
                while (next < length && pending.Count < window)
                {
                    long at = next;
                    int n = (int)Math.Min(ChunkBytes, length - at);
                    var buf = ArrayPool<byte>.Shared.Rent(n);
                    pending.Enqueue((Task.Run(() => reader.ReadExactly(offset + at, buf.AsSpan(0, n)), cancellationToken), buf, n));
                    next += n;
                }
                var (read, buffer, count) = pending.Peek();
                await read.ConfigureAwait(false);
                pending.Dequeue();
                if (sparse && !buffer.AsSpan(0, count).ContainsAnyExcept((byte)0)) output.Seek(count, SeekOrigin.Current);
                else await output.WriteAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        finally
        {
            // On failure, let outstanding reads finish before their buffers go back to the pool.
            foreach (var (read, buffer, _) in pending)
            {
                try { await read.ConfigureAwait(false); }
                catch (MalformedDataException) { }
                catch (IOException) { }
                catch (OperationCanceledException) { }
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        if (sparse && output.Length < start + length) output.SetLength(start + length);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return length;
    }
}
