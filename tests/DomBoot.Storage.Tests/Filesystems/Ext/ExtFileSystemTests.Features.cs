using DomBoot.Formats.Errors;
using DomBoot.Storage.Filesystems;
using DomBoot.Storage.Filesystems.Ext;
using DomBoot.Storage.Images;
using DomBoot.TestSupport;

namespace DomBoot.Storage.Tests.Filesystems.Ext;

public sealed partial class ExtFileSystemTests
{
    public static TheoryData<string, string> RefusedFeatures => new()
    {
        { "encrypt", "incompatible feature 0x10000 (encrypt) is not supported" },
        { "casefold", "incompatible feature 0x20000 (casefold) is not supported" },
    };

    [Theory]
    [MemberData(nameof(RefusedFeatures))]
    public void Open_RefusesIncompatibleFeatureByName(string feature, string message)
    {
        using var tmp = new TempDir("domboot-ext-feature");
        var image = tmp.File(feature + ".img");
        Tools.Run("mkfs.ext4", "-q", "-F", "-O", feature, "-U", ExtTestImages.Uuid, "-L", ExtTestImages.Label, image, "4M");
        using var volume = new FileBlockReader(image);
        var ex = Assert.Throws<UnsupportedFeatureException>(() => ExtFileSystem.Open(volume));
        Assert.Equal("ext4 superblock at offset 0x400: " + message, ex.Message);
    }

    [Fact]
    public void Open_ToleratesNeedsRecoveryLikeGrub()
    {
        // An unclean ext3/ext4 journal: GRUB reads the filesystem as it is on disk, and so do we.
        using var tmp = new TempDir("domboot-ext-recover");
        var image = tmp.File("recover.img");
        File.Copy(ExtTestImages.SmallImage("ext3-1k", "-t", "ext3", "-b", "1024"), image);
        Tools.Run("debugfs", "-w", "-R", "feature needs_recovery", image);
        Assert.Contains("needs_recovery", Tools.Run("debugfs", "-R", "features", image).Stdout, StringComparison.Ordinal);
        var before = Tools.Sha256(image);
        using (var volume = new FileBlockReader(image))
        {
            var fs = ExtFileSystem.Open(volume);
            Assert.Equal("ext3", fs.TypeName);
            var big = PathResolver.Resolve(fs, "/big.bin");
            Assert.Equal(Tools.Sha256(Path.Combine(ExtTestImages.SmallSourceTree, "big.bin")), Sha256(fs, big));
        }
        Assert.Equal(before, Tools.Sha256(image));
    }
}

public sealed partial class ExtFileSystemTests
{
    [Theory]
    [MemberData(nameof(AllVariants))]
    public void GroupDescriptorChecksums_VerifyAndMismatchIsTolerated(string variant)
    {
        var bytes = File.ReadAllBytes(ExtTestImages.Image(variant));
        var fs = ExtFileSystem.Open(new DomBoot.Formats.Binary.MemoryBlockReader(bytes));
        uint groups = fs.Superblock.InodesCount / fs.Superblock.InodesPerGroup;
        bool? expected = fs.Superblock.HasMetadataCsum || fs.Superblock.HasRoCompat(Ext4Features.RoCompatGdtCsum) ? true : null;
        for (uint g = 0; g < groups; g++) Assert.Equal(expected, fs.GroupDescriptorChecksumMatches(g));
        if (expected is null) return;

        // Flip bg_free_blocks_count of group 0: the checksum no longer matches, and reads go on as on GRUB.
        int gd0 = fs.Superblock.BlockSize == 1024 ? 2048 : fs.Superblock.BlockSize;
        bytes[gd0 + 0xC] ^= 0x10;
        var damaged = ExtFileSystem.Open(new DomBoot.Formats.Binary.MemoryBlockReader(bytes));
        Assert.False(damaged.GroupDescriptorChecksumMatches(0));
        var hello = PathResolver.Resolve(damaged, "/hello.txt");
        Assert.Equal(Tools.Sha256(Path.Combine(ExtTestImages.SourceTree, "hello.txt")), Sha256(damaged, hello));
    }
}
