using DomBoot.Boot.Bls;
using DomBoot.Boot.Model;
using DomBoot.Boot.Tests.GrubLegacy;
using DomBoot.Formats.Errors;

namespace DomBoot.Boot.Tests.Bls;

public class BlsMenuTests
{
    private const string MachineId = "5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c";

    // Fedora 30 / RHEL 8 style (anchors 9.5): options $kernelopts from grubenv, grub_* keys for blscfg.
    private const string Fc38 = """
        title Fedora Linux (6.2.9-300.fc38.x86_64) 38 (Thirty Eight)
        version 6.2.9-300.fc38.x86_64
        linux /vmlinuz-6.2.9-300.fc38.x86_64
        initrd /initramfs-6.2.9-300.fc38.x86_64.img
        options $kernelopts
        grub_users $grub_users
        grub_arg --unrestricted
        grub_class fedora
        """;

    private const string Fc39 = """
        title Fedora Linux (6.5.6-300.fc39.x86_64) 39 (Thirty Nine)
        version 6.5.6-300.fc39.x86_64
        linux /vmlinuz-6.5.6-300.fc39.x86_64
        initrd /initramfs-6.5.6-300.fc39.x86_64.img
        options $kernelopts ${tuned_params}
        grub_users $grub_users
        grub_arg --unrestricted
        grub_class fedora
        """;

    private const string Rescue = """
        title Fedora Linux (0-rescue-5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c) 39 (Thirty Nine)
        version 0-rescue-5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c
        linux /vmlinuz-0-rescue-5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c
        initrd /initramfs-0-rescue-5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c.img
        options $kernelopts
        grub_users $grub_users
        grub_arg --unrestricted
        grub_class fedora
        """;

    private static readonly Dictionary<string, string> GrubEnv = new()
    {
        ["saved_entry"] = MachineId + "-6.2.9-300.fc38.x86_64",
        ["kernelopts"] = "root=UUID=0b6e2a8e-6d7c-4f6a-9b1d-2c3e4f5a6b7c ro rootflags=subvol=root rhgb quiet",
        ["boot_success"] = "0",
    };

    private static FakeGuestFiles FedoraBoot(string? loaderConf = null)
    {
        var files = new FakeGuestFiles()
            .Add($"/loader/entries/{MachineId}-6.2.9-300.fc38.x86_64.conf", Fc38)
            .Add($"/loader/entries/{MachineId}-0-rescue.conf", Rescue)
            .Add($"/loader/entries/{MachineId}-6.5.6-300.fc39.x86_64.conf", Fc39)
            .Add("/loader/entries/README", "not an entry");
        if (loaderConf is not null) files.Add("/loader/loader.conf", loaderConf);
        return files;
    }

    [Fact]
    public void FromDirectory_FedoraSortsNewestFirstAndUsesSavedEntry()
    {
        BootMenu menu = BlsMenu.FromDirectory(FedoraBoot(), new GuestPath(null, "/loader"), GrubEnv);
        Assert.Equal("bls", menu.ConfigFormat);
        Assert.Equal("/loader/entries", menu.ConfigPath);
        Assert.Equal(
            [MachineId + "-6.5.6-300.fc39.x86_64", MachineId + "-6.2.9-300.fc38.x86_64", MachineId + "-0-rescue"],
            menu.Entries.Select(e => e.Id));
        Assert.Equal(1, menu.DefaultIndex);
        Assert.Equal($"grubenv saved_entry=\"{MachineId}-6.2.9-300.fc38.x86_64\"", menu.DefaultReason);
        BootEntry e = menu.Entries[1];
        Assert.Equal("Fedora Linux (6.2.9-300.fc38.x86_64) 38 (Thirty Eight)", e.Title);
        Assert.Equal(new GuestPath(null, "/vmlinuz-6.2.9-300.fc38.x86_64"), e.Kernel);
        Assert.Equal([new GuestPath(null, "/initramfs-6.2.9-300.fc38.x86_64.img")], e.Initrds);
        Assert.Equal("root=UUID=0b6e2a8e-6d7c-4f6a-9b1d-2c3e4f5a6b7c ro rootflags=subvol=root rhgb quiet", e.Args);
        Assert.Equal($"/loader/entries/{MachineId}-6.2.9-300.fc38.x86_64.conf:3", e.Source);
        // ${tuned_params} is unset: expands to nothing, and the command line has no stray blank.
        Assert.Equal("root=UUID=0b6e2a8e-6d7c-4f6a-9b1d-2c3e4f5a6b7c ro rootflags=subvol=root rhgb quiet", menu.Entries[0].Args);
        Assert.Contains(menu.Warnings, w => w.Contains("$tuned_params is not set", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("default *fc39*\ntimeout 3\n", 0, 3)]
    [InlineData("timeout 5\ndefault " + MachineId + "-0-rescue.conf\n", 2, 5)]
    [InlineData("default " + MachineId + "-6.2.9-300.fc38.x86_64\n", 1, null)]
    [InlineData("default " + MachineId + "-[0-6].[!5]*\ntimeout menu-hidden\n", 1, 0)]
    public void FromDirectory_LoaderConfDefaultGlob(string loaderConf, int expected, int? timeout)
    {
        BootMenu menu = BlsMenu.FromDirectory(FedoraBoot(loaderConf), new GuestPath(null, "/loader"), GrubEnv);
        Assert.Equal(expected, menu.DefaultIndex);
        Assert.Equal(timeout, menu.TimeoutSeconds);
        Assert.StartsWith("loader.conf default", menu.DefaultReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_UnmatchedDefaultIsFirstEntry()
    {
        var entries = new[] { BlsEntry.Parse(Fc38, "/loader/entries/a.conf") };
        BootMenu menu = BlsMenu.Build(entries, "default nothing-*\n", null);
        Assert.Equal(0, menu.DefaultIndex);
        Assert.Equal("loader.conf default \"nothing-*\" matches no entry -> first entry", menu.DefaultReason);
        Assert.Equal("", menu.Entries[0].Args);
    }

    [Fact]
    public void Build_SortKeyMachineIdVersionAndBadEntriesLast()
    {
        BlsEntry E(string file, string body) => BlsEntry.Parse(body + "\nlinux /k\n", "/loader/entries/" + file);
        var entries = new[]
        {
            E("nokey-2.conf", "title no sort key 2"),
            E("arch-6.6+0-3.conf", "sort-key arch\nversion 6.6"),   // boot counting: 0 tries left = bad
            E("fedora-6.1.conf", "sort-key fedora\nmachine-id bbb\nversion 6.1"),
            E("fedora-6.10.conf", "sort-key fedora\nmachine-id bbb\nversion 6.10"),
            E("fedora-aaa.conf", "sort-key fedora\nmachine-id aaa\nversion 1.0"),
            E("arch-6.5.conf", "sort-key arch\nversion 6.5"),
            E("nokey-10.conf", "title no sort key 10"),
        };
        BootMenu menu = BlsMenu.Build(entries, null, null);
        Assert.Equal(["arch-6.5", "fedora-aaa", "fedora-6.10", "fedora-6.1", "nokey-10", "nokey-2", "arch-6.6"], menu.Entries.Select(e => e.Id));
        Assert.Equal(Enumerable.Range(0, 7), menu.Entries.Select(e => e.Index));
    }

    [Fact]
    public void Parse_KeepsAllKeysAndJoinsOptions()
    {
        BlsEntry e = BlsEntry.Parse("""
            # comment
            title   Debian  12
            version 6.1.0-13-amd64
            machine-id 5e2f1b6c8d9a4e7f9b0c1d2e3f4a5b6c
            sort-key debian
            linux //boot//vmlinuz-6.1.0-13-amd64
            initrd /boot/intel-ucode.img
            initrd /boot/initrd.img-6.1.0-13-amd64
            options root=/dev/vda1
            options   console=ttyS0  quiet
            devicetree /dtb/x.dtb
            architecture x64
            extra /creds/a.cred
            """, "/loader/entries/debian-6.1.0-13-amd64+3-1.conf");
        Assert.Equal("debian-6.1.0-13-amd64", e.Id);
        Assert.Equal(3, e.TriesLeft);
        Assert.Equal(1, e.TriesDone);
        Assert.Equal("Debian  12", e.Title);
        Assert.Equal("root=/dev/vda1 console=ttyS0  quiet", e.Options);
        Assert.Equal(["/boot/intel-ucode.img", "/boot/initrd.img-6.1.0-13-amd64"], e.Initrds);
        Assert.Equal("/dtb/x.dtb", e.Devicetree);
        Assert.Equal("x64", e.Architecture);
        Assert.Equal([new KeyValuePair<string, string>("extra", "/creds/a.cred")], e.OtherKeys);
        BootMenu menu = BlsMenu.Build([e], null, null);
        // anchors 9.21: Fedora grubby's "//boot/vmlinuz" normalised.
        Assert.Equal(new GuestPath(null, "/boot/vmlinuz-6.1.0-13-amd64"), menu.Entries[0].Kernel);
        Assert.Equal("root=/dev/vda1 console=ttyS0 quiet", menu.Entries[0].Args);
    }

    [Fact]
    public void FromDirectory_SkipsOversizedEntryAndWarnsOnEfiOnly()
    {
        FakeGuestFiles files = new FakeGuestFiles()
            .Add("/loader/entries/big.conf", new byte[1024 * 1024 + 1])
            .Add("/loader/entries/uki.conf", "title UKI\nefi /EFI/Linux/x.efi\n");
        BootMenu menu = BlsMenu.FromDirectory(files, new GuestPath(null, "/loader"));
        BootEntry e = Assert.Single(menu.Entries);
        Assert.Null(e.Kernel);
        Assert.Contains(menu.Warnings, w => w.Contains("big.conf: larger than", StringComparison.Ordinal));
        Assert.Contains(menu.Warnings, w => w.Contains("no linux key (efi", StringComparison.Ordinal));
    }

    [Fact]
    public void FromDirectory_EmptyDirectoryHasNoDefault()
    {
        BootMenu menu = BlsMenu.FromDirectory(new FakeGuestFiles(), new GuestPath(null, "/boot/loader"));
        Assert.Empty(menu.Entries);
        Assert.Equal(-1, menu.DefaultIndex);
    }

    [Theory]
    [InlineData("title a\nlinux /k\0\n", 2)]
    [InlineData("title a\r\noptions x\r\nlinux /k\0", 3)]
    public void Parse_RejectsNul(string text, int line)
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => BlsEntry.Parse(text, "/loader/entries/a.conf"));
        Assert.Equal(line, ex.Line);
    }

    [Fact]
    public void Parse_RejectsHugeLine()
    {
        var ex = Assert.Throws<ConfigSyntaxException>(() => BlsEntry.Parse("options " + new string('a', 70_000), "/loader/entries/a.conf"));
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void FromDirectory_RejectsNulInLoaderConf()
    {
        FakeGuestFiles files = FedoraBoot("timeout 3\ndefault \0x\n");
        var ex = Assert.Throws<ConfigSyntaxException>(() => BlsMenu.FromDirectory(files, new GuestPath(null, "/loader")));
        Assert.Equal("/loader/loader.conf", ex.FileName);
        Assert.Equal(2, ex.Line);
    }
}

public class BlsSweepTests
{
    [Fact]
    public void Build_MutationSweepOnlyAllowedExceptions()
    {
        const string seed = "title T\nversion 6.1~rc1-2^x.3\nsort-key k\nlinux /vmlinuz\ninitrd /a /b\noptions ${kernelopts} $x quiet\n";
        var rng = new Random(1234);
        char[] alphabet = ['\n', ' ', '$', '{', '}', '~', '^', '-', '.', '\0', '#', '9', '+'];
        var env = new Dictionary<string, string> { ["kernelopts"] = "root=/dev/vda1" };
        for (int n = 0; n < 2000; n++)
        {
            char[] chars = seed.ToCharArray();
            for (int k = 0; k < 4; k++) chars[rng.Next(chars.Length)] = alphabet[rng.Next(alphabet.Length)];
            string text = new(chars);
            try
            {
                BlsEntry a = BlsEntry.Parse(text, "/loader/entries/a-1.2+0.conf");
                BlsEntry b = BlsEntry.Parse(text.Replace("6.", "7.", StringComparison.Ordinal), "/loader/entries/b-" + n + ".conf");
                BootMenu menu = BlsMenu.Build([a, b, BlsEntry.Parse(Seedless, "c.conf")], "default " + text[..Math.Min(8, text.Length)].Replace('\n', '*') + "\n", env);
                Assert.InRange(menu.DefaultIndex, 0, 2);
            }
            catch (MalformedDataException)
            {
            }
        }
    }

    private const string Seedless = "linux /k\n";
}

public class UapiVersionTests
{
    // Each list is in ascending order per the UAPI Version Format Specification.
    [Theory]
    [InlineData("123~rc1", "123")]
    [InlineData("1~~", "1~~a")]
    [InlineData("1~", "1")]
    [InlineData("123", "123-a")]
    [InlineData("123-a", "123^1")]
    [InlineData("123^1", "123.1")]
    [InlineData("123.1", "123a")]
    [InlineData("123a", "124")]
    [InlineData("abc-5", "1.0.0~rc1")]
    [InlineData("1.0.0~rc1", "5.2")]
    [InlineData("2", "225.1")]
    [InlineData("a", "1")]
    [InlineData("ab", "abb")]
    [InlineData("6.1.9", "6.1.10")]
    [InlineData("6.2.9-300.fc38", "6.5.6-300.fc39")]
    [InlineData("0-rescue-5e2f", "6.2.9")]
    public void Compare_Orders(string lower, string higher)
    {
        Assert.Equal(-1, UapiVersion.Compare(lower, higher));
        Assert.Equal(1, UapiVersion.Compare(higher, lower));
    }

    [Theory]
    [InlineData("1.2", "1.2")]
    [InlineData("001", "1")]
    [InlineData("1_2", "1+2")]
    [InlineData("", "")]
    public void Compare_Equal(string a, string b) => Assert.Equal(0, UapiVersion.Compare(a, b));
}

public class GlobTests
{
    [Theory]
    [InlineData("fedora-*", "fedora-6.1", true)]
    [InlineData("fedora-*", "arch-6.1", false)]
    [InlineData("*.conf", "a.conf", true)]
    [InlineData("a?c", "abc", true)]
    [InlineData("a?c", "ac", false)]
    [InlineData("[a-c]x", "bx", true)]
    [InlineData("[!a-c]x", "bx", false)]
    [InlineData("[]]", "]", true)]
    [InlineData("[abc", "[abc", true)]
    [InlineData("\\*", "*", true)]
    [InlineData("\\*", "a", false)]
    [InlineData("*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Matches(string pattern, string text, bool expected) => Assert.Equal(expected, Glob.Matches(pattern, text));
}
