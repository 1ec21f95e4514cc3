using Replayvisor.Engine.Trace;
using Replayvisor.Replay.Text;

namespace Replayvisor.Cli.Commands;

/// <summary>`replayvisor dump trace.rvt [--kind K] [--from N] [--to N] [--json]`: one event per line.</summary>
public static class DumpCommand
{
    public static int Run(string path, string[] kinds, ulong from, ulong to, bool json, TextWriter output, TextWriter stderr)
    {
        foreach (string k in kinds)
            if (!EventText.Kinds.Contains(k))
                throw new CliException(ExitCodes.Usage, $"unknown event kind '{k}' (kinds: {string.Join(", ", EventText.Kinds)})");
        // Both ends are inclusive (--from N --to N is the events at N): a range that ends before it starts
        // holds no instruction count, which is a mistake in the command, not a trace without events there.
        if (from > to)
            throw new CliException(ExitCodes.Usage, $"--from {from} is after --to {to}: the range holds no instruction count (both ends are inclusive)");
        using var reader = TraceFiles.Open(path);
        var symbols = Engine.Boot.GuestSymbols.FromImage(reader.GuestImage.Span);
        string iretJumpers = Engine.Boot.IretJumpers.Of(reader.GuestImage.Span, symbols);
        try
        {
            bool beyondTo = false;
            ulong last = 0;
            foreach (var e in reader.ReadEvents())
            {
                last = e.Icount;
                if (e.Icount < from) continue;
                if (e.Icount > to) { beyondTo = true; break; }
                if (kinds.Length > 0 && !kinds.Contains(EventText.Kind(e))) continue;
                output.WriteLine(json ? EventText.Json(e, symbols, iretJumpers) : EventText.Text(e, symbols, iretJumpers));
            }
            // A killed recorder's trace ends where it was stopped, not where the run ended: say so, as export does
            // (docs/record-replay.md "Prefixes"); the events are all there is, so the exit code stays 0.
            output.Flush();
            if (!reader.Complete && !beyondTo)
                stderr.WriteLine($"dump: note: {path} is incomplete ({reader.IncompleteReason}): its events end at instruction {last:N0}, where the recording stops");
        }
        catch (TraceFormatException e)
        {
            output.Flush();
            throw TraceFiles.FromFormat(path, e);
        }
        return ExitCodes.Ok;
    }
}
