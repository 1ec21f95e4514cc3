using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay;

namespace Replayvisor.Cli.Commands;

/// <summary>`replayvisor replay trace.rvt [--to ICOUNT] [--quiet]`: re-execute and verify a recording.</summary>
public static class ReplayCommand
{
    public static int Run(string path, ulong? to, bool quiet, TextWriter stderr)
    {
        using var reader = TraceFiles.Open(path);
        using var stdout = new WriteGuard(Console.OpenStandardOutput(), "standard output");
        ReplayResult r;
        var session = new ReplaySession(reader, quiet ? null : stdout, to);
        // Long replays show progress on stderr when it is a terminal (README.md, "The command line").
        using var progress = Console.IsErrorRedirected ? null : new Timer(_ =>
        {
            var (done, total) = session.Progress();
            if (total > 0) stderr.Write($"\rreplaying: {done:N0} of {total:N0} instructions ({100.0 * done / total:F0}%)  ");
        }, null, 1000, 500);
        try
        {
            r = session.Run();
        }
        catch (TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
        catch (BootImageException e) { throw new CliException(ExitCodes.TraceDamaged, $"{path}: the embedded guest image does not load: {e.Message}"); }
        stdout.Flush();
        progress?.Dispose();
        if (!Console.IsErrorRedirected) stderr.Write("\r\u001b[K");
        if (r.Divergence != null)
        {
            stderr.WriteLine($"replayvisor: replay diverged after {r.EventsVerified:N0} matching events");
            stderr.WriteLine(r.Report);
            return ExitCodes.Diverged;
        }
        string prefix = $"its recorded prefix replayed bit-exactly to instruction {r.RecordedIcount:N0} ({r.EventsVerified:N0} events verified)";
        // Damage ends the events: the ones before it were verified, and the exit code says the trace is damaged.
        if (r.Damage != null)
            throw new CliException(ExitCodes.TraceDamaged, $"{path}: {r.Damage.Message}; {prefix}");
        // Only a prefix was verified: the exit code says so, not only the message (README's table).
        if (r.PrefixOnly)
            throw new CliException(ExitCodes.TracePrefixOnly, $"{path}: the trace is incomplete ({reader.IncompleteReason}); {prefix}");
        if (to.HasValue)
            stderr.WriteLine($"replay: bit-exact up to instruction {r.Exit.Icount:N0} ({r.EventsVerified:N0} events verified)");
        else
            stderr.WriteLine($"replay: bit-exact, {r.Exit.Icount:N0} instructions, {r.EventsVerified:N0} events verified, ended as recorded: {GuestCommands.Describe(r.Exit)}");
        return ExitCodes.Ok;
    }
}
