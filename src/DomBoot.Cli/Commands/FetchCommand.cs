using System.CommandLine;
using DomBoot.Net.Fetching;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot fetch URL [-o FILE] [--cache DIR]`: download through the local cache and print the path.</summary>
internal static class FetchCommand
{
    public static Command Build()
    {
        var url = new Argument<string>("URL") { Description = "http(s) URL, optionally with #sha256=HEX" };
        var output = new Option<string?>("--output", "-o") { Description = "Also copy the file here (written whole or not at all)" };
        var cache = new Option<string?>("--cache") { Description = "Cache directory (default ${XDG_CACHE_HOME:-~/.cache}/domboot/http)" };
        var maxBytes = new Option<long>("--max-bytes") { Description = "Largest accepted download", DefaultValueFactory = _ => new FetchOptions().MaxBytes };
        var command = new Command("fetch", "Download a URL through the revalidating local cache (resumes, verifies #sha256=)");
        command.Arguments.Add(url);
        command.Options.Add(output);
        command.Options.Add(cache);
        command.Options.Add(maxBytes);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var text = parseResult.GetValue(url)!;
            if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
                throw new UsageException($"fetch: {text}: not an absolute URL");
            var cacheDir = parseResult.GetValue(cache) ?? DefaultCacheDir();
            IProgress<long>? progress = Console.IsErrorRedirected ? null : new TerminalProgress();
            var result = await CachedFetcher.FetchAsync(uri, cacheDir, new FetchOptions { MaxBytes = parseResult.GetValue(maxBytes) }, progress, cancellationToken);
            if (progress is not null) Console.Error.Write("\r\x1b[K");
            var path = result.LocalPath;
            if (parseResult.GetValue(output) is { Length: > 0 } target)
            {
                var full = Path.GetFullPath(target);
                var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
                try
                {
                    File.Copy(result.LocalPath, temp, overwrite: true);
                    File.Move(temp, full, overwrite: true);
                }
                finally { if (File.Exists(temp)) File.Delete(temp); }
                path = full;
            }
            Console.Out.WriteLine(path);
            return 0;
        });
        return command;
    }

    internal static string DefaultCacheDir()
    {
        var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        var baseDir = string.IsNullOrEmpty(xdg) || !Path.IsPathRooted(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
            : xdg;
        return Path.Combine(baseDir, "domboot", "http");
    }

    private sealed class TerminalProgress : IProgress<long>
    {
        private long _lastTick;

        public void Report(long value)
        {
            long now = Environment.TickCount64;
            if (now - _lastTick < 200) return;
            _lastTick = now;
            Console.Error.Write($"\r{value / (1024.0 * 1024.0):F1} MiB");
        }
    }
}
