using System.Text.Json;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Images;

/// <summary>Builds raw and qcow2 images with the real tools for the image tests.</summary>
internal static class Qcow2TestImages
{
    /// <summary>A raw image with random, patterned, zero and sparse regions (seeded, so runs repeat).</summary>
    public static string MakeSourceRaw(TempDir dir, string name = "src.raw", int sizeInBytes = 3 << 20)
    {
        var path = dir.File(name);
        var rng = new Random(1234);
        var data = new byte[sizeInBytes];
        // first twelfth random, up to a third a compressible pattern, up to a half zeros, the rest random with zero holes
        int a = sizeInBytes / 12, b = sizeInBytes / 3, c = sizeInBytes / 2;
        rng.NextBytes(data.AsSpan(0, a));
        for (int i = a; i < b; i++) data[i] = (byte)(i * 7 / 13);
        rng.NextBytes(data.AsSpan(c));
        for (int hole = c; hole + 8192 < data.Length; hole += 100_000) data.AsSpan(hole, 8192).Clear();
        File.WriteAllBytes(path, data);
        return path;
    }

    public static string Convert(TempDir dir, string src, string name, string compat, int clusterSize, bool compressed,
        bool extendedL2 = false, string srcFormat = "raw")
    {
        var dst = dir.File(name);
        var opts = $"compat={compat},cluster_size={clusterSize}" + (extendedL2 ? ",extended_l2=on" : "");
        var args = new List<string> { "convert", "-f", srcFormat, "-O", "qcow2", "-o", opts };
        if (compressed) args.Add("-c");
        args.Add(src);
        args.Add(dst);
        Tools.Run("qemu-img", args);
        return dst;
    }

    /// <summary>What QEMU itself says the guest sees: qemu-img convert -O raw.</summary>
    public static string ToRaw(TempDir dir, string image, string name)
    {
        var dst = dir.File(name);
        Tools.Run("qemu-img", "convert", "-O", "raw", image, dst);
        return dst;
    }

    public static JsonElement Info(string image) =>
        JsonDocument.Parse(Tools.Run("qemu-img", "info", "--output=json", image).Stdout).RootElement.Clone();

    public static void QemuIo(string image, string format, params string[] commands)
    {
        var args = new List<string> { "-f", format };
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(image);
        Tools.Run("qemu-io", args);
    }
}
