using DomBoot.Formats.Errors;

namespace DomBoot.Cli;

/// <summary>The one place exceptions become exit codes (sysexits) and one-line messages.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Usage = 64;
    public const int DataError = 65;
    public const int NoInput = 66;
    public const int Unavailable = 69;
    public const int Software = 70;
    public const int IoError = 74;

    /// <summary>EX_TEMPFAIL: a wait ran out (shutdown -w, block-detach); trying again may work.</summary>
    public const int TemporaryFailure = 75;
    public const int Interrupted = 130;

    public static bool IsExpected(Exception ex) => ex is not null;

    public static int CodeFor(Exception ex) => ex switch
    {
        MalformedDataException => DataError,
        UnsupportedFeatureException => DataError,
        FileNotFoundException or DirectoryNotFoundException => NoInput,
        UsageException or InvalidRequestException => Usage,
        UnavailableException => Unavailable,
        OperationCanceledException => Interrupted,
        TimeoutException => TemporaryFailure,
        UnauthorizedAccessException or IOException => IoError,
        _ => Software,
    };

    public static int Report(Exception ex, bool verbose, TextWriter stderr)
    {
        var message = ex.Message.ReplaceLineEndings(" ");
        if (ex is FileNotFoundException fnf && fnf.FileName is { } fn) message = $"{fn}: no such file";
        stderr.WriteLine($"domboot: error: {message}");
        if (verbose) stderr.WriteLine(ex.ToString());
        return CodeFor(ex);
    }
}

/// <summary>Wrong use of the command line (exit 64).</summary>
internal sealed class UsageException(string message) : Exception(message);
