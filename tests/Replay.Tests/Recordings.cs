using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Record;
using Replayvisor.Engine.Session;

namespace Replayvisor.Replay.Tests;

/// <summary>Records guests into in-memory traces and replays them, for the tests.</summary>
public static class Recordings
{
    public sealed record Recorded(byte[] Trace, LiveResult Result, string Console);

    public static Recorded Record(string name, bool pae, ClockKind clock = ClockKind.Virtual, int? chaos = null,
        ulong checkpointInterval = 1_000_000, ulong maxInstructions = 500_000_000, bool killBeforeComplete = false, int vcpus = 1, byte[]? stdin = null)
    {
        var trace = new MemoryStream();
        var console = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = Guests.Image(name, pae),
            ImageName = name + (pae ? "-pae" : "") + ".elf",
            Machine = new XenMachineOptions { MemoryMiB = 32, Hypervisor = new Engine.Xen.HypervisorOptions { VcpuCount = vcpus } },
            MaxInstructions = maxInstructions,
            Clock = clock,
            ChaosSeed = chaos,
            CheckpointInterval = checkpointInterval,
            Trace = trace,
            ConsoleOutput = console,
            Stdin = (stdin ?? (name == "echo" ? Guests.EchoInput : null)) is { } input ? new MemoryStream(input) : null,
            WriterOptions = new TraceWriterOptions { MaxChunkEvents = 64 },
        }))
        {
            var result = s.Run();
            return new Recorded(trace.ToArray(), result, System.Text.Encoding.ASCII.GetString(console.ToArray()));
        }
    }

    public static ReplayResult Replay(byte[] trace, ulong? to = null, Stream? console = null, CpuTier tier = CpuTier.Compiled)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return new ReplaySession(reader, console, to) { Tier = tier, CompileThreshold = tier == CpuTier.Compiled ? 0 : 50 }.Run();
    }

    /// <summary>Rewrites a trace with one event changed (a new, complete, valid trace).</summary>
    public static byte[] Rewrite(byte[] trace, Func<TraceEvent, TraceEvent?> change, Func<TraceSummary, TraceSummary>? summary = null)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, reader.Header, reader.GuestImage.Span, new TraceWriterOptions { MaxChunkEvents = 64 }, leaveOpen: true))
        {
            // Changed events keep the file sorted by instruction count (a stable sort keeps same-count order).
            foreach (var e in reader.ReadEvents().Select(change).OfType<TraceEvent>().OrderBy(e => e.Icount))
                w.Append(e);
            w.Complete(summary?.Invoke(reader.Summary!) ?? reader.Summary!);
        }
        return output.ToArray();
    }
}
