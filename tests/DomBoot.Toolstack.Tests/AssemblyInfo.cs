// domboot runs QEMU guests through Unix sockets, flock and /proc: Linux only.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
