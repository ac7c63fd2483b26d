using System.Globalization;
using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems.Ext;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Ext;

public sealed class Ext4SuperblockTests
{
    public static TheoryData<string> Variants => new(ExtTestImages.Variants.Keys);

    [Theory]
    [MemberData(nameof(Variants))]
    public void Parse_MatchesDumpe2fs(string variant)
    {
        var image = ExtTestImages.Image(variant);
        var bytes = new byte[Ext4Superblock.SizeInBytes];
        using (var f = File.OpenRead(image))
        {
            f.Position = Ext4Superblock.VolumeOffset;
            f.ReadExactly(bytes);
        }
        var sb = Ext4Superblock.Parse(bytes, Ext4Superblock.VolumeOffset);
        var fields = Tools.Run("dumpe2fs", "-h", image).Stdout.Split('\n')
            .Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .GroupBy(p => p[0].Trim()).ToDictionary(g => g.Key, g => g.First()[1].Trim());
        long Num(string key) => long.Parse(fields[key], CultureInfo.InvariantCulture);
        Assert.Equal(Num("Inode count"), sb.InodesCount);
        Assert.Equal(Num("Block count"), (long)sb.BlocksCount);
        Assert.Equal(Num("Block size"), sb.BlockSize);
        Assert.Equal(Num("First block"), sb.FirstDataBlock);
        Assert.Equal(Num("Blocks per group"), sb.BlocksPerGroup);
        Assert.Equal(Num("Inodes per group"), sb.InodesPerGroup);
        Assert.Equal(Num("Inode size"), sb.InodeSize);
        Assert.Equal(Num("First inode"), sb.FirstIno);
        Assert.Equal(fields["Filesystem UUID"], sb.UuidText);
        Assert.Equal(fields["Filesystem volume name"], sb.VolumeName);
        var features = fields["Filesystem features"].Split(' ');
        Assert.Equal(features.Contains("metadata_csum"), sb.HasMetadataCsum);
        Assert.Equal(features.Contains("64bit"), sb.HasIncompat(Ext4Features.Incompat64Bit));
        Assert.Equal(features.Contains("extent"), sb.HasIncompat(Ext4Features.IncompatExtents));
        Assert.Equal(features.Contains("inline_data"), sb.HasIncompat(Ext4Features.IncompatInlineData));
        if (sb.HasMetadataCsum)
            Assert.Equal(Convert.ToUInt32(fields["Checksum"], 16), sb.Checksum);
    }

    [Fact]
    public void Parse_RejectsShortBuffer()
    {
        var ex = Assert.Throws<TruncatedDataException>(() => Ext4Superblock.Parse(new byte[100], 1024));
        Assert.Equal(1024, ex.Offset);
    }
}
