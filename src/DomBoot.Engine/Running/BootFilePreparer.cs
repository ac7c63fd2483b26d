using System.IO.Compression;
using DomBoot.Engine.Planning;
using DomBoot.Formats.Errors;

namespace DomBoot.Engine.Running;

/// <summary>Makes the files a plan needs (concatenated initrds, gunzipped kernels, UKI sections), each whole or not at all.</summary>
public static class BootFilePreparer
{
    public const long MaxPreparedBytes = 4L << 30;

    public static void Prepare(BootPlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        foreach (var file in plan.Prepare) PrepareOne(file, cancellationToken);
    }

    private static void PrepareOne(PreparedFile file, CancellationToken cancellationToken)
    {
        string tmp = file.Path + ".tmp";
        try
        {
            using (var output = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                foreach (var src in file.Sources)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    long pad = (file.AlignEachTo - output.Length % file.AlignEachTo) % file.AlignEachTo;
                    for (long i = 0; i < pad; i++) output.WriteByte(0);
                    using var input = new FileStream(src.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                    if (src.Offset > 0) input.Seek(src.Offset, SeekOrigin.Begin);
                    Stream s = src.Length is { } len ? new BoundedReadStream(input, len) : input;
                    if (file.Gunzip) s = new GZipStream(s, CompressionMode.Decompress);
                    try
                    {
                        CopyBounded(s, output, MaxPreparedBytes - output.Length, src.Path, cancellationToken);
                    }
                    catch (InvalidDataException ex)
                    {
                        throw new MalformedDataException("gzip stream " + Quote.Text(src.Path), -1, "corrupt: " + ex.Message);
                    }
                    finally
                    {
                        if (!ReferenceEquals(s, input)) s.Dispose();
                    }
                }
                output.Flush(flushToDisk: false);
            }
            File.Move(tmp, file.Path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    private static void CopyBounded(Stream from, Stream to, long budget, string name, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = from.Read(buffer)) > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            total += n;
            if (total > budget)
                throw new MalformedDataException(Quote.Text(name), -1, $"prepared boot file grows past {MaxPreparedBytes} bytes; expected less");
            to.Write(buffer, 0, n);
        }
    }

    /// <summary>Reads at most a fixed number of bytes from an inner stream; short input is a truncation error.</summary>
    private sealed class BoundedReadStream(Stream inner, long limit) : Stream
    {
        private readonly long _length = limit;
        private long _left = limit;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _length;
        public override long Position { get => _length - _left; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_left <= 0) return 0;
            int n = inner.Read(buffer, offset, (int)Math.Min(count, _left));
            if (n == 0) throw new TruncatedDataException("boot file section", _length - _left, _left, 0);
            _left -= n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
