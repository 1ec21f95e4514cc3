using System.Diagnostics;
using System.Text.RegularExpressions;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// Runs `replayvisor gdbserver` on a golden trace (127.0.0.1, an ephemeral port) and the real
/// gdb in batch mode against it, with bounded waits; both processes are killed on a timeout.
/// </summary>
public static class GdbHarness
{
    public sealed record Session(string Gdb, Cli.Result Server, GuestSymbols Symbols);

    /// <summary>A golden trace by name (traces/NAME), or a trace the test recorded (an absolute path).</summary>
    public static string TracePath(string name) => Path.IsPathRooted(name) ? name : Path.Combine(Cli.RepoRoot, "traces", name);

    /// <summary>The trace's embedded guest image written to a file gdb can load, and its symbols.</summary>
    public static (string Elf, GuestSymbols Symbols) GuestOf(string trace)
    {
        using var reader = TraceReader.Open(File.OpenRead(TracePath(trace)));
        string elf = Cli.TempFile(reader.Header.GuestImageName);
        File.WriteAllBytes(elf, reader.GuestImage.ToArray());
        return (elf, GuestSymbols.FromImage(reader.GuestImage.Span));
    }

    public static Session Run(string trace, params string[] commands)
    {
        var (elf, symbols) = GuestOf(trace);
        var server = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "replayvisor.dll"), "gdbserver", TracePath(trace), "--port", "0"]);
        try
        {
            int port = ReadPort(server);
            var args = new List<string> { "--batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off", "-ex", $"file {elf}",
                "-ex", $"target remote 127.0.0.1:{port}" };
            foreach (string c in commands) { args.Add("-ex"); args.Add(c); }
            var gdb = Start("gdb", args);
            var gdbOut = gdb.StandardOutput.ReadToEndAsync();
            var gdbErr = gdb.StandardError.ReadToEndAsync();
            if (!gdb.WaitForExit(240_000)) { gdb.Kill(true); throw new TimeoutException("gdb did not finish:\n" + gdbOut.Result); }
            var serverErr = server.StandardError.ReadToEndAsync();
            var serverOut = server.StandardOutput.ReadToEndAsync();
            if (!server.WaitForExit(60_000)) { server.Kill(true); throw new TimeoutException("the gdbserver did not exit after gdb quit"); }
            return new Session(gdbOut.Result + gdbErr.Result, new Cli.Result(server.ExitCode, serverOut.Result, serverErr.Result), symbols);
        }
        finally
        {
            if (!server.HasExited) server.Kill(true);
        }
    }

    /// <summary>
    /// As <see cref="Run"/>, interrupting gdb once (SIGINT, as Ctrl-C on its terminal does) when the
    /// server has received a packet matching <paramref name="resume"/> (gdbserver --log prints each
    /// packet), i.e. while gdb waits for that run to stop.
    /// </summary>
    public static Session RunInterrupted(string trace, Regex resume, params string[] commands)
    {
        var (elf, symbols) = GuestOf(trace);
        var server = Start("dotnet", [Path.Combine(AppContext.BaseDirectory, "replayvisor.dll"), "gdbserver", TracePath(trace), "--port", "0", "--log"]);
        Process? gdb = null;
        try
        {
            int port = ReadPort(server);
            var serverLog = new System.Collections.Concurrent.BlockingCollection<string>();
            var logging = Task.Run(() =>
            {
                while (server.StandardError.ReadLine() is { } line) serverLog.Add(line);
                serverLog.CompleteAdding();
            });
            var args = new List<string> { "--batch", "-nx", "-ex", "set pagination off", "-ex", $"file {elf}", "-ex", $"target remote 127.0.0.1:{port}" };
            foreach (string c in commands) { args.Add("-ex"); args.Add(c); }
            gdb = Start("gdb", args);
            var gdbOut = gdb.StandardOutput.ReadToEndAsync();
            var gdbErr = gdb.StandardError.ReadToEndAsync();
            var seen = new System.Text.StringBuilder();
            while (true)
            {
                if (!serverLog.TryTake(out string? line, 240_000)) throw new TimeoutException("the server never received the resume packet:\n" + seen);
                seen.AppendLine(line);
                if (line.StartsWith("gdbserver: < ", StringComparison.Ordinal) && resume.IsMatch(line["gdbserver: < ".Length..])) break;
            }
            Process.Start("kill", ["-INT", gdb.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!.WaitForExit();
            if (!gdb.WaitForExit(240_000)) throw new TimeoutException("gdb did not finish:\n" + gdbOut.Result);
            if (!server.WaitForExit(60_000)) throw new TimeoutException("the gdbserver did not exit after gdb quit");
            logging.Wait(60_000);
            return new Session(gdbOut.Result + gdbErr.Result, new Cli.Result(server.ExitCode, server.StandardOutput.ReadToEnd(), string.Join("\n", serverLog)), symbols);
        }
        finally
        {
            if (gdb is { HasExited: false }) gdb.Kill(true);
            if (!server.HasExited) server.Kill(true);
        }
    }

    private static Process Start(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static int ReadPort(Process server)
    {
        var line = server.StandardError.ReadLineAsync();
        if (!line.Wait(120_000) || line.Result is not { } text) throw new TimeoutException("the gdbserver did not say where it listens");
        const string marker = "listening on 127.0.0.1:";
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(at >= 0, text);
        return int.Parse(text[(at + marker.Length)..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
    }
}
