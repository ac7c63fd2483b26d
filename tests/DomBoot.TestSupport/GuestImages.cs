using System.Buffers.Binary;

namespace DomBoot.TestSupport;

/// <summary>Guest artefacts made at test time from the cached Debian packages with the Debian tools.</summary>
public static class GuestImages
{
    private static readonly Lock Gate = new();
    private static string? _vmlinux;

    /// <summary>
    /// The uncompressed ELF vmlinux inside the cached bzImage's LZ4 payload, extracted once per test run with
    /// tail | head | lz4 -dc (payload_offset at 0x248, length at 0x24C, setup_sects at 0x1F1, read here by hand).
    /// </summary>
    public static string Vmlinux
    {
        get
        {
            lock (Gate)
            {
                if (_vmlinux is not null && File.Exists(_vmlinux)) return _vmlinux;
                Tools.Require("lz4");
                var kernel = File.ReadAllBytes(Cache.Kernel);
                int setupSects = kernel[0x1F1] == 0 ? 4 : kernel[0x1F1];
                long payload = (setupSects + 1) * 512L + BinaryPrimitives.ReadUInt32LittleEndian(kernel.AsSpan(0x248));
                long length = BinaryPrimitives.ReadUInt32LittleEndian(kernel.AsSpan(0x24C));
                var dir = Path.Combine(Path.GetTempPath(), $"domboot-vmlinux-{Environment.ProcessId}");
                Directory.CreateDirectory(dir);
                var path = Path.Combine(dir, "vmlinux");
                // lz4 exits 1 on the 4-byte size trailer the kernel build appends; the output is complete.
                Tools.Shell($"tail -c +{payload + 1} '{Cache.Kernel}' | head -c {length} | lz4 -dc > '{path}'", check: false);
                var head = new byte[4];
                using (var f = File.OpenRead(path)) f.ReadExactly(head);
                if (head[0] != 0x7F || head[1] != (byte)'E' || head[2] != (byte)'L' || head[3] != (byte)'F')
                    Assert.Fail($"extracting vmlinux from {Cache.Kernel} with lz4 did not give an ELF file");
                _vmlinux = path;
                return path;
            }
        }
    }
}
