using System.Text;
using DomBoot.Formats.Cpio;

namespace DomBoot.Engine.Demo;

/// <summary>The embedded default guest: a busybox initramfs whose /init prints a banner and powers off.</summary>
public static class DemoGuest
{
    public const string BannerPrefix = "domboot demo: guest kernel ";

    /// <summary>/init, run by the guest kernel. Only busybox applets; prints kernel version and uptime, then powers off.</summary>
    public const string InitScript = """
        #!/bin/sh
        /bin/busybox mount -t proc proc /proc
        read up idle < /proc/uptime
        echo "domboot demo: guest kernel $(/bin/busybox uname -r) is up after ${up} s; powering off"
        /bin/busybox poweroff -f
        """;

    public const string Cmdline = "console=ttyS0 quiet panic=-1";

    /// <summary>Builds the demo initramfs (newc, uncompressed) around a static busybox binary.</summary>
    public static byte[] BuildInitramfs(string busyboxPath, string init = InitScript)
    {
        var busybox = File.ReadAllBytes(busyboxPath);
        return InitramfsBuilder.BuildInMemory(w =>
        {
            w.AddDirectory("bin");
            w.AddDirectory("dev");
            w.AddDirectory("proc");
            w.AddDirectory("sys");
            w.AddFile("bin/busybox", busybox, (UnixFileMode)0b111_101_101);
            w.AddSymlink("bin/sh", "busybox");
            w.AddCharDevice("dev/console", 5, 1);
            w.AddCharDevice("dev/null", 1, 3, (UnixFileMode)0b110_110_110);
            w.AddFile("init", Encoding.ASCII.GetBytes(init.ReplaceLineEndings("\n") + "\n"), (UnixFileMode)0b111_101_101);
        }, gzip: false);
    }
}
