using System.CommandLine;
using System.Net;
using System.Runtime.InteropServices;
using DomBoot.Net.Serving;

namespace DomBoot.Cli.Commands;

/// <summary>`domboot serve DIR [--listen ADDR:PORT]`: the HTTP boot server, until SIGINT/SIGTERM.</summary>
internal static class ServeCommand
{
    public static Command Build()
    {
        var dir = new Argument<string>("DIR") { Description = "Directory to serve (nothing outside it is reachable)" };
        var listen = new Option<string>("--listen") { Description = "Address and port to listen on (port 0: any free port)", DefaultValueFactory = _ => "127.0.0.1:8080" };
        var command = new Command("serve", "Serve kernels, initrds and packed images over HTTP, with generated iPXE scripts (NAME.ipxe)");
        command.Arguments.Add(dir);
        command.Options.Add(listen);
        command.SetAction(async (parseResult, cancellationToken) =>
        {
            var endpoint = ParseEndPoint(parseResult.GetValue(listen)!);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            void OnSignal(PosixSignalContext context)
            {
                context.Cancel = true;
                stop.Cancel();
            }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            await using var server = new BootServer(accessLog: Console.Error);
            var bound = await server.StartAsync(parseResult.GetValue(dir)!, endpoint, stop.Token);
            var host = bound.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{bound.Address}]" : bound.Address.ToString();
            Console.Out.WriteLine($"http://{host}:{bound.Port}/");
            Console.Out.Flush();
            try { await Task.Delay(Timeout.Infinite, stop.Token); }
            catch (OperationCanceledException) { }
            await server.StopAsync();
            return 0;
        });
        return command;
    }

    internal static IPEndPoint ParseEndPoint(string text)
    {
        if (IPEndPoint.TryParse(text, out var ep) && ep.Port != 0 || text.EndsWith(":0", StringComparison.Ordinal) && IPEndPoint.TryParse(text, out ep))
            return ep!;
        if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) && port <= 65535)
            return new IPEndPoint(IPAddress.Loopback, port);
        throw new UsageException($"--listen {text}: expected ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
    }
}
