using System.Text;

namespace DomBoot.TestSupport;

/// <summary>A write-only stream that keeps what a guest printed on its console, readable while it is written.</summary>
public sealed class ConsoleCaptureStream : Stream
{
    private readonly MemoryStream _ms = new();
    private readonly Lock _gate = new();

    public string Text { get { lock (_gate) return Encoding.UTF8.GetString(_ms.ToArray()); } }

    public override void Write(byte[] buffer, int offset, int count) { lock (_gate) _ms.Write(buffer, offset, count); }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
