using DomBoot.Formats.Binary;
using DomBoot.Formats.Errors;

namespace DomBoot.Formats.Kernel;

/// <summary>loadflags (0x211), Linux x86 boot protocol (Documentation/arch/x86/boot.rst).</summary>
#pragma warning disable CA1711 // named after the boot protocol fields loadflags/xloadflags (STYLE: names follow the spec)
[Flags]
public enum LoadFlags : byte
{
    None = 0,
    LoadedHigh = 0x01,
    KaslrFlag = 0x02,
    QuietFlag = 0x20,
    KeepSegments = 0x40,
    CanUseHeap = 0x80,
}

/// <summary>xloadflags (0x236, protocol 2.12+), arch/x86/include/uapi/asm/bootparam.h.</summary>
[Flags]
public enum XLoadFlags : ushort
{
    None = 0,
    Kernel64 = 0x0001,
    CanBeLoadedAbove4G = 0x0002,
    EfiHandover32 = 0x0004,
    EfiHandover64 = 0x0008,
    EfiKexec = 0x0010,
    FiveLevel = 0x0020,
    FiveLevelEnabled = 0x0040,
}
#pragma warning restore CA1711

/// <summary>
/// The real-mode kernel header ("setup header") of an x86 bzImage/zImage, Linux boot protocol 2.00-2.15
/// (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header"). Fields newer than <see cref="Version"/> are
/// reported as their documented default (InitrdAddrMax, CmdlineSize, XLoadFlags, HardwareSubarch) or null.
/// </summary>
public sealed record BzImageSetupHeader
{
    internal const string StructureName = "bzImage setup header";

    /// <summary>Byte offsets inside the kernel file, named as in boot.rst.</summary>
    internal static class Offsets
    {
        public const int SetupSects = 0x1F1;
        public const int RootFlags = 0x1F2;
        public const int SysSize = 0x1F4;
        public const int RamSize = 0x1F8;
        public const int VidMode = 0x1FA;
        public const int RootDev = 0x1FC;
        public const int BootFlag = 0x1FE;
        public const int Jump = 0x200;
        public const int Header = 0x202;
        public const int Version = 0x206;
        public const int RealmodeSwtch = 0x208;
        public const int StartSysSeg = 0x20C;
        public const int KernelVersion = 0x20E;
        public const int TypeOfLoader = 0x210;
        public const int LoadFlags = 0x211;
        public const int SetupMoveSize = 0x212;
        public const int Code32Start = 0x214;
        public const int RamdiskImage = 0x218;
        public const int RamdiskSize = 0x21C;
        public const int BootsectKludge = 0x220;
        public const int HeapEndPtr = 0x224;
        public const int ExtLoaderVer = 0x226;
        public const int ExtLoaderType = 0x227;
        public const int CmdLinePtr = 0x228;
        public const int InitrdAddrMax = 0x22C;
        public const int KernelAlignment = 0x230;
        public const int RelocatableKernel = 0x234;
        public const int MinAlignment = 0x235;
        public const int XLoadFlags = 0x236;
        public const int CmdlineSize = 0x238;
        public const int HardwareSubarch = 0x23C;
        public const int HardwareSubarchData = 0x240;
        public const int PayloadOffset = 0x248;
        public const int PayloadLength = 0x24C;
        public const int SetupData = 0x250;
        public const int PrefAddress = 0x258;
        public const int InitSize = 0x260;
        public const int HandoverOffset = 0x264;
        public const int KernelInfoOffset = 0x268;
    }

    /// <summary>Protocol constants.</summary>
    internal static class Constants
    {
        public const ushort BootFlag = 0xAA55;
        public const uint HeaderMagic = 0x53726448; // "HdrS"
        public const ushort MinimumVersion = 0x0200;
        public const int SectorSize = 512;
        public const int MinimumFileSize = 1024;
        public const uint DefaultInitrdAddrMax = 0x37FFFFFF; // boot.rst: before 2.03
        public const uint DefaultCmdlineSize = 255; // boot.rst: 2.05 and earlier
    }

    public byte SetupSects { get; init; }
    /// <summary>setup_sects with the boot.rst rule applied: 0 means 4.</summary>
    public int EffectiveSetupSects => SetupSects == 0 ? 4 : SetupSects;
    public ushort RootFlags { get; init; }
    /// <summary>Protected-mode size in 16-byte paragraphs; only the low 16 bits before protocol 2.04.</summary>
    public uint SysSize { get; init; }
    public ushort RamSize { get; init; }
    public ushort VidMode { get; init; }
    public ushort RootDev { get; init; }
    public ushort BootFlag { get; init; }
    public ushort Jump { get; init; }
    public uint Header { get; init; }
    /// <summary>Protocol version, (major &lt;&lt; 8) | minor.</summary>
    public ushort Version { get; init; }
    public uint RealmodeSwtch { get; init; }
    public ushort StartSysSeg { get; init; }
    /// <summary>kernel_version: pointer to the version string minus 0x200; 0 means none.</summary>
    public ushort KernelVersionPointer { get; init; }
    public byte TypeOfLoader { get; init; }
    public LoadFlags LoadFlags { get; init; }
    public ushort SetupMoveSize { get; init; }
    public uint Code32Start { get; init; }
    public uint RamdiskImage { get; init; }
    public uint RamdiskSize { get; init; }
    public uint BootsectKludge { get; init; }
    /// <summary>2.01+.</summary>
    public ushort? HeapEndPtr { get; init; }
    /// <summary>2.02+.</summary>
    public byte? ExtLoaderVer { get; init; }
    /// <summary>2.02+.</summary>
    public byte? ExtLoaderType { get; init; }
    /// <summary>2.02+.</summary>
    public uint? CmdLinePtr { get; init; }
    /// <summary>2.03+; 0x37FFFFFF before.</summary>
    public uint InitrdAddrMax { get; init; }
    /// <summary>2.05+.</summary>
    public uint? KernelAlignment { get; init; }
    /// <summary>2.05+; false before.</summary>
    public bool RelocatableKernel { get; init; }
    /// <summary>2.10+; log2 of the minimum alignment.</summary>
    public byte? MinAlignment { get; init; }
    /// <summary>2.12+; None before.</summary>
    public XLoadFlags XLoadFlags { get; init; }
    /// <summary>2.06+; 255 before.</summary>
    public uint CmdlineSize { get; init; }
    /// <summary>2.07+; 0 (PC) before.</summary>
    public uint HardwareSubarch { get; init; }
    /// <summary>2.07+; 0 before.</summary>
    public ulong HardwareSubarchData { get; init; }
    /// <summary>2.08+; from the start of the protected-mode code.</summary>
    public uint? PayloadOffset { get; init; }
    /// <summary>2.08+; includes the 4-byte uncompressed-size trailer.</summary>
    public uint? PayloadLength { get; init; }
    /// <summary>2.09+.</summary>
    public ulong? SetupData { get; init; }
    /// <summary>2.10+.</summary>
    public ulong? PrefAddress { get; init; }
    /// <summary>2.10+.</summary>
    public uint? InitSize { get; init; }
    /// <summary>2.11+.</summary>
    public uint? HandoverOffset { get; init; }
    /// <summary>2.15+.</summary>
    public uint? KernelInfoOffset { get; init; }

    /// <summary>Absolute offset of the kernel file's first byte.</summary>
    public long ImageOffset { get; init; }

    /// <summary>"2.15".</summary>
    public string ProtocolText => FormattableString.Invariant($"{Version >> 8}.{Version & 0xFF:D2}");

    /// <summary>boot.rst: protocol &gt;= 2.00 and LOADED_HIGH.</summary>
    public bool IsBzImage => Version >= 0x0200 && (LoadFlags & LoadFlags.LoadedHigh) != 0;

    /// <summary>boot.rst 2.05: relocatable_kernel.</summary>
    public bool IsRelocatable => Version >= 0x0205 && RelocatableKernel;

    /// <summary>End of the setup header inside the file: 0x202 + byte[0x201] (the jump's displacement).</summary>
    public int HeaderEndOffset => Offsets.Header + (Jump >> 8);

    /// <summary>File offset of the protected-mode kernel: (setup_sects + 1) * 512.</summary>
    public int ProtectedModeOffset => (EffectiveSetupSects + 1) * Constants.SectorSize;

    /// <summary>File offset of the compressed payload (2.08+).</summary>
    public long? PayloadFileOffset => PayloadOffset is { } p ? ProtectedModeOffset + (long)p : null;

    public static bool HasMagic(ReadOnlySpan<byte> file) =>
        file.Length >= Offsets.Header + 4
        && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(file[Offsets.Header..]) == Constants.HeaderMagic;

    /// <summary>Parses the header; <paramref name="fileStart"/> is the whole kernel file.</summary>
    public static BzImageSetupHeader Parse(ReadOnlySpan<byte> fileStart, long imageOffset) =>
        Parse(fileStart, imageOffset, fileStart.Length);

    /// <summary>
    /// Parses the header from the first bytes of a kernel file of <paramref name="fileSizeInBytes"/> bytes
    /// (at least 1024 bytes of it must be in <paramref name="fileStart"/>).
    /// </summary>
    public static BzImageSetupHeader Parse(ReadOnlySpan<byte> fileStart, long imageOffset, long fileSizeInBytes)
    {
        var r = new FieldReader(fileStart, imageOffset, StructureName);
        if (fileStart.Length < Constants.MinimumFileSize)
            throw new TruncatedDataException(StructureName, imageOffset, Constants.MinimumFileSize, fileStart.Length);
        fileSizeInBytes = Math.Max(fileSizeInBytes, fileStart.Length);

        ushort bootFlag = r.U16(Offsets.BootFlag);
        if (bootFlag != Constants.BootFlag)
            throw r.FieldError(Offsets.BootFlag, "boot_flag", FieldReader.Hex(bootFlag), "0xAA55");
        uint header = r.U32(Offsets.Header);
        if (header != Constants.HeaderMagic)
            throw r.FieldError(Offsets.Header, "header", Quote.Bytes(r.Bytes(Offsets.Header, 4)), "\"HdrS\"");
        ushort version = r.U16(Offsets.Version);
        if (version < Constants.MinimumVersion)
            throw r.FieldError(Offsets.Version, "version", FieldReader.Hex(version), ">= 0x200");

        byte setupSects = r.U8(Offsets.SetupSects);
        int effective = setupSects == 0 ? 4 : setupSects;
        long realModeSize = checked((effective + 1L) * Constants.SectorSize);
        if (realModeSize > fileSizeInBytes)
            throw r.FieldError(Offsets.SetupSects, "setup_sects", setupSects,
                FormattableString.Invariant($"(setup_sects+1)*512 <= file size {fileSizeInBytes}"));

        ushort kernelVersion = r.U16(Offsets.KernelVersion);
        // boot.rst: kernel_version must be less than 0x200 * setup_sects
        if (kernelVersion != 0 && kernelVersion >= Constants.SectorSize * (long)effective)
            throw r.FieldError(Offsets.KernelVersion, "kernel_version", FieldReader.Hex(kernelVersion),
                FormattableString.Invariant($"< 0x200 * setup_sects = 0x{Constants.SectorSize * effective:X}"));

        bool v(int minor) => version >= 0x0200 + minor;
        var h = new BzImageSetupHeader
        {
            ImageOffset = imageOffset,
            SetupSects = setupSects,
            RootFlags = r.U16(Offsets.RootFlags),
            SysSize = v(4) ? r.U32(Offsets.SysSize) : r.U16(Offsets.SysSize),
            RamSize = r.U16(Offsets.RamSize),
            VidMode = r.U16(Offsets.VidMode),
            RootDev = r.U16(Offsets.RootDev),
            BootFlag = bootFlag,
            Jump = r.U16(Offsets.Jump),
            Header = header,
            Version = version,
            RealmodeSwtch = r.U32(Offsets.RealmodeSwtch),
            StartSysSeg = r.U16(Offsets.StartSysSeg),
            KernelVersionPointer = kernelVersion,
            TypeOfLoader = r.U8(Offsets.TypeOfLoader),
            LoadFlags = (LoadFlags)r.U8(Offsets.LoadFlags),
            SetupMoveSize = r.U16(Offsets.SetupMoveSize),
            Code32Start = r.U32(Offsets.Code32Start),
            RamdiskImage = r.U32(Offsets.RamdiskImage),
            RamdiskSize = r.U32(Offsets.RamdiskSize),
            BootsectKludge = r.U32(Offsets.BootsectKludge),
            HeapEndPtr = v(1) ? r.U16(Offsets.HeapEndPtr) : null,
            ExtLoaderVer = v(2) ? r.U8(Offsets.ExtLoaderVer) : null,
            ExtLoaderType = v(2) ? r.U8(Offsets.ExtLoaderType) : null,
            CmdLinePtr = v(2) ? r.U32(Offsets.CmdLinePtr) : null,
            InitrdAddrMax = v(3) ? r.U32(Offsets.InitrdAddrMax) : Constants.DefaultInitrdAddrMax,
            KernelAlignment = v(5) ? r.U32(Offsets.KernelAlignment) : null,
            RelocatableKernel = v(5) && r.U8(Offsets.RelocatableKernel) != 0,
            MinAlignment = v(10) ? r.U8(Offsets.MinAlignment) : null,
            XLoadFlags = v(12) ? (XLoadFlags)r.U16(Offsets.XLoadFlags) : XLoadFlags.None,
            CmdlineSize = v(6) ? r.U32(Offsets.CmdlineSize) : Constants.DefaultCmdlineSize,
            HardwareSubarch = v(7) ? r.U32(Offsets.HardwareSubarch) : 0,
            HardwareSubarchData = v(7) ? r.U64(Offsets.HardwareSubarchData) : 0,
            PayloadOffset = v(8) ? r.U32(Offsets.PayloadOffset) : null,
            PayloadLength = v(8) ? r.U32(Offsets.PayloadLength) : null,
            SetupData = v(9) ? r.U64(Offsets.SetupData) : null,
            PrefAddress = v(10) ? r.U64(Offsets.PrefAddress) : null,
            InitSize = v(10) ? r.U32(Offsets.InitSize) : null,
            HandoverOffset = v(11) ? r.U32(Offsets.HandoverOffset) : null,
            KernelInfoOffset = v(15) ? r.U32(Offsets.KernelInfoOffset) : null,
        };

        if (h.PayloadOffset is { } po && h.PayloadLength is { } pl)
        {
            long end = checked(realModeSize + po + pl);
            if (end > fileSizeInBytes)
                throw r.FieldError(Offsets.PayloadOffset, "payload_offset + payload_length",
                    FormattableString.Invariant($"0x{po:X} + 0x{pl:X} (ends at file offset 0x{end:X})"),
                    FormattableString.Invariant($"within the file of {fileSizeInBytes} bytes"));
        }
        return h;
    }
}
