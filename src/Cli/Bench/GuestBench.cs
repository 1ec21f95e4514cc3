using System.Text.Json.Nodes;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Cpu.Compiled;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Trace;
using Replayvisor.Engine.Xen;
using Replayvisor.Record;
using Replayvisor.Replay;
using Replayvisor.Engine.Session;

namespace Replayvisor.Cli.Bench;

/// <summary>
/// `replayvisor bench --guest K`: the record/replay figures for one guest, measured in one process
/// run so they compare: a plain run, a recording (virtual clock), its replay, and a host-clock
/// recording for trace size per instruction and per event.
/// </summary>
public static class GuestBench
{
    /// <summary>
    /// The instruction limit of every run (`--max-instructions`): 10^9, ten times the longest of our guests
    /// (guests/longrun, 10^8), a few seconds on the block-cache tier. A guest that never stops would
    /// otherwise hang the bench, whose runs are unattended and repeated.
    /// </summary>
    public const ulong DefaultMaxInstructions = 1_000_000_000;

    public static int Run(string kernelPath, int rounds, ulong checkpointInterval, bool json, TextWriter stdout, ulong maxInstructions = DefaultMaxInstructions)
    {
        if (rounds < 1) throw new CliException(ExitCodes.Usage, $"--rounds {rounds}: must be at least 1");
        if (maxInstructions == 0) throw new CliException(ExitCodes.Usage, "--max-instructions 0: a run must be allowed at least one instruction");
        byte[] kernel = Commands.GuestCommands.ReadKernel(kernelPath);
        // A kernel that does not load is refused with its one line (exit 5) before anything is measured.
        Commands.GuestCommands.RefuseBadKernel(kernelPath, kernel, new Engine.Boot.DomainBuildOptions { MemoryMiB = 32 }, null);
        // With --json, stdout carries one document: the text lines are dropped, the figures collected.
        var output = json ? TextWriter.Null : stdout;
        var options = new XenMachineOptions { MemoryMiB = 32 };
        // Every run stops at the limit; the first run to reach it ends the bench with exit 4 (the guest runs the same in every run type).
        LiveResult Limited(LiveSession session)
        {
            var r = session.Run();
            if (r.Exit.Kind == MachineExitKind.InstructionLimit)
                throw new CliException(ExitCodes.InstructionLimit,
                    $"{kernelPath}: the guest did not stop within {maxInstructions:N0} instructions (bench --guest measures runs that end; raise --max-instructions if it does end)");
            return r;
        }
        output.WriteLine($"guest {Path.GetFileName(kernelPath)}, best of {rounds} after {WarmupRounds} warm-up rounds (not counted), checkpoint interval {checkpointInterval:N0}");
        output.WriteLine("times are the CPU time of the running thread (steadier than wall time on a shared machine) unless marked");
        long hypercalls = 0, compiled = 0, ilBytes = 0;
        XenMachine? last = null;
        // A plain run is what `run` does and a recording what `record` does: both are timed from
        // building the machine to its end, so the record overhead is the trace and nothing else.
        (RunTimes Times, ulong Icount) PlainRun(CpuTier tier, bool selectorCache = true, int compileThreshold = X86Cpu.DefaultCompileThreshold)
        {
            var t = RunClock.Start();
            using var s = new LiveSession(new LiveRequest
            {
                Kernel = kernel, ImageName = "bench",
                Machine = options with { Tier = tier, SelectorLoadCache = selectorCache, CompileThreshold = compileThreshold },
                ConsoleOutput = Stream.Null, MaxInstructions = maxInstructions,
            });
            var r = Limited(s);
            var sec = t.Elapsed;
            hypercalls = s.Machine.HypercallStats.Values.Sum();
            compiled = s.Machine.Cpu.BlocksCompiled;
            ilBytes = s.Machine.Cpu.CompiledIlBytes;
            last = s.Machine;
            return (sec, r.Exit.Icount);
        }
        // The block cache first (it warms the .NET JIT for the engine). Then the compile cost, at a
        // compile threshold as low as the reuse threshold, so that many blocks are compiled: a
        // compiled run that pays the .NET JIT's one-time work on the compiler itself, then, with the
        // process-wide cache of compiled code emptied, one that compiles every region again, then runs
        // that find the code in the cache: the difference of the compiling run and the best of those
        // is the compile cost (emitting the IL and the .NET JIT turning it into machine code).
        // Then the cache is emptied again and the first run at the default thresholds compiles what
        // a one-off `run` compiles; the measured rounds bind that code (docs/compiled-tier.md).
        double blockCache = Best(rounds, [() => PlainRun(CpuTier.BlockCache)], out _, out _)[0].Thread;
        const int low = X86Cpu.DefaultReuseThreshold;
        double firstUse = PlainRun(CpuTier.Compiled, compileThreshold: low).Times.Thread;
        BlockCompiler.ForgetSharedCode();
        double cold = PlainRun(CpuTier.Compiled, compileThreshold: low).Times.Thread;
        long blocksCompiled = compiled, blockIl = ilBytes;
        double warm = Best(3, [() => PlainRun(CpuTier.Compiled, compileThreshold: low)], out _, out _)[0].Thread;
        BlockCompiler.ForgetSharedCode();
        double oneOff = PlainRun(CpuTier.Compiled).Times.Thread;
        long oneOffBlocks = compiled, oneOffIl = ilBytes;
        byte[] trace = [];
        long observedEvents = 0;
        // The recording is timed until the trace is complete in the stream (writer threads included).
        (RunTimes Times, ulong Icount) Record(bool writerThread)
        {
            var ms = new MemoryStream();
            var t = RunClock.Start();
            LiveResult r;
            using (var s = new LiveSession(new LiveRequest
            {
                Kernel = kernel, ImageName = "bench", Machine = options, Trace = ms, ConsoleOutput = Stream.Null,
                CheckpointInterval = checkpointInterval, WriterThread = writerThread, MaxInstructions = maxInstructions,
            }))
                r = Limited(s);
            var sec = t.Elapsed;
            trace = ms.ToArray();
            return (sec, r.Exit.Icount);
        }
        // The recording's work on the guest's thread without the trace: the Xen model's observation
        // (call sites, the upcall's ports) and the batch appends, the batches discarded when full
        // (no encoding, no writer thread, no file). What a recording costs beyond it is the trace.
        (RunTimes Times, ulong Icount) ObserveOnly()
        {
            var t = RunClock.Start();
            var request = new LiveRequest { Kernel = kernel, ImageName = "bench", Machine = options, ConsoleOutput = Stream.Null, MaxInstructions = maxInstructions };
            using var s = new LiveSession(request);
            // The recording's hypercall outputs (the request's default, as Record's).
            s.Machine.Hypervisor.Observer = DiscardedBatches.Observer(request.HypercallOutputs, out var batcher);
            var r = Limited(s);
            var times = t.Elapsed;
            observedEvents = batcher.EventCount;
            return (times, r.Exit.Icount);
        }
        (RunTimes Times, ulong Icount) Replay()
        {
            using var reader = TraceReader.Open(new MemoryStream(trace));
            var t = RunClock.Start();
            var r = new ReplaySession(reader, null).Run();
            if (r.Divergence != null) throw new InvalidOperationException("bench replay diverged: " + r.Report);
            return (t.Elapsed, r.Exit.Icount);
        }
        // Run, record and replay take turns round by round, so a change in the machine's load or
        // in the .NET JIT's code during the bench falls on all three alike.
        // The plain run once more with Xen's selector-load cache off: the hypercall round trip without it (same results).
        // The recording once more with the trace written on the recording thread: what the writer thread takes off it.
        RunTimes[] best = Best(rounds, [() => PlainRun(CpuTier.Compiled), () => Record(writerThread: true), Replay,
            () => PlainRun(CpuTier.Compiled, selectorCache: false), () => Record(writerThread: false), ObserveOnly], out ulong icount, out double[] median,
            out var perRound);
        // Round by round: the recording over the plain run just before it, the recording over the replay just after it.
        List<double>[] threadByRound = perRound.Select(m => m.Select(t => t.Thread).ToList()).ToArray();
        List<double> overheadByRound = PerRound(threadByRound[1], threadByRound[0]), speedByRound = PerRound(threadByRound[1], threadByRound[2]);
        // Involuntary context switches of the running thread, median per run type: a writer thread woken
        // too often takes the recording thread's core (docs/record-replay.md "Measuring").
        double[] switches = perRound.Select(m => Median(m.Select(t => (double)t.Switches).ToList())).ToArray();
        double overheadPaired = (Median(overheadByRound) - 1) * 100, speedPaired = Median(speedByRound);
        // The same rounds as a cost per event: what the recording and the replay add to the plain run
        // for each event of the trace. It does not depend on how often the guest makes events, so it
        // predicts the overhead of any guest from its event rate (docs/record-replay.md "Measuring").
        long events = EventCount(trace);
        double recordNsPerEvent = Median(PerRoundExtra(threadByRound[1], threadByRound[0], events));
        double replayNsPerEvent = Median(PerRoundExtra(threadByRound[2], threadByRound[0], events));
        double observeNsPerEvent = Median(PerRoundExtra(threadByRound[5], threadByRound[0], events));
        double observeOverheadPaired = (Median(PerRound(threadByRound[5], threadByRound[0])) - 1) * 100;
        double plain = best[0].Thread, record = best[1].Thread, replay = best[2].Thread, uncached = best[3].Thread, recordInline = best[4].Thread;
        double overheadAll = (best[1].AllThreads / best[0].AllThreads - 1) * 100, overheadWall = (best[1].Wall / best[0].Wall - 1) * 100;
        double stateHashUs = StateHashCost(last!);
        double compileMsPer1000 = blocksCompiled == 0 ? 0 : Math.Max(0, cold - warm) * 1000 / blocksCompiled * 1000;
        double nsPerHypercall = plain * 1e9 / Math.Max(1, hypercalls);
        double nsPerHypercallUncached = uncached * 1e9 / Math.Max(1, hypercalls);
        output.WriteLine($"instructions:        {icount:N0}, {hypercalls:N0} hypercalls");
        output.WriteLine($"plain run:           {plain * 1000,9:F1} ms  {icount / plain / 1e6,7:F1} MIPS   {nsPerHypercall,8:F0} ns per hypercall (whole run / hypercalls)");
        output.WriteLine($"  no selector cache: {uncached * 1000,9:F1} ms  {icount / uncached / 1e6,7:F1} MIPS   {nsPerHypercallUncached,8:F0} ns per hypercall (Xen's return path loads every selector in full)");
        output.WriteLine($"  block-cache tier:  {blockCache * 1000,9:F1} ms  {icount / blockCache / 1e6,7:F1} MIPS   compiled tier speed-up {blockCache / plain,5:F2}x");
        output.WriteLine($"  one-off run:       {oneOff * 1000,9:F1} ms  {oneOffBlocks:N0} blocks compiled, {oneOffIl:N0} IL bytes (compile threshold {X86Cpu.DefaultCompileThreshold:N0}: the first run in a process)");
        output.WriteLine($"  compile cost:      {cold * 1000,9:F1} ms  {blocksCompiled:N0} blocks compiled at threshold {low}, {blockIl:N0} IL bytes: {compileMsPer1000:F1} ms and {(blocksCompiled == 0 ? 0 : blockIl * 1000 / blocksCompiled):N0} IL bytes per 1,000 blocks (that run - {warm * 1000:F1} ms reusing its code)");
        output.WriteLine($"  first compiled run:{firstUse * 1000,9:F1} ms  the same compiles, and the .NET JIT's one-time work on the compiler itself ({(firstUse - cold) * 1000:F1} ms more)");
        output.WriteLine($"record:              {record * 1000,9:F1} ms  {icount / record / 1e6,7:F1} MIPS   overhead vs run {(record / plain - 1) * 100,6:F1}% (CPU time of the recording thread)");
        output.WriteLine($"  all threads' CPU:  {best[1].AllThreads * 1000,9:F1} ms  run {best[0].AllThreads * 1000,7:F1} ms      overhead vs run {overheadAll,6:F1}% (every thread of the process: trace writer, JIT, GC)");
        output.WriteLine($"  wall time:         {best[1].Wall * 1000,9:F1} ms  run {best[0].Wall * 1000,7:F1} ms      overhead vs run {overheadWall,6:F1}%");
        output.WriteLine($"  paired by round:   overhead vs run {overheadPaired,6:F1}% median of the rounds' record/run ratios (rounds {(overheadByRound.Min() - 1) * 100:F1} to {(overheadByRound.Max() - 1) * 100:F1}%)");
        output.WriteLine($"  per event:         record {recordNsPerEvent,6:F1} ns, replay {replayNsPerEvent,6:F1} ns more than the plain run, per event of the trace ({events:N0}; median of the rounds' differences)");
        output.WriteLine($"  observing only:    {best[5].Thread * 1000,9:F1} ms  {icount / best[5].Thread / 1e6,7:F1} MIPS   overhead vs run {(best[5].Thread / plain - 1) * 100,6:F1}% (paired {observeOverheadPaired:F1}%, {observeNsPerEvent:F1} ns per event: the model's observation and the batch appends, batches discarded: no trace)");
        output.WriteLine($"  no writer thread:  {recordInline * 1000,9:F1} ms  {icount / recordInline / 1e6,7:F1} MIPS   overhead vs run {(recordInline / plain - 1) * 100,6:F1}% (trace encoded and written on the recording thread; all threads {best[4].AllThreads * 1000:F1} ms)");
        output.WriteLine($"  context switches:  involuntary, of the running thread, median per run: run {switches[0]:F0}, record {switches[1]:F0}, no writer thread {switches[4]:F0}, replay {switches[2]:F0}");
        output.WriteLine($"replay:              {replay * 1000,9:F1} ms  {icount / replay / 1e6,7:F1} MIPS   replay/record speed {record / replay,5:F2}x (CPU time of the replaying and recording threads)");
        output.WriteLine($"  all threads' CPU:  {best[2].AllThreads * 1000,9:F1} ms  record {best[1].AllThreads * 1000,7:F1} ms   replay/record speed {best[1].AllThreads / best[2].AllThreads,5:F2}x");
        output.WriteLine($"  wall time:         {best[2].Wall * 1000,9:F1} ms  record {best[1].Wall * 1000,7:F1} ms   replay/record speed {best[1].Wall / best[2].Wall,5:F2}x");
        output.WriteLine($"  median of rounds:  {median[2] * 1000,9:F1} ms  record {median[1] * 1000,7:F1} ms   replay/record speed {median[1] / median[2],5:F2}x (thread CPU; the lines above take each run type's best round)");
        output.WriteLine($"  paired by round:   replay/record speed {speedPaired,5:F2}x median of the rounds' record/replay ratios (rounds {speedByRound.Min():F2}x to {speedByRound.Max():F2}x; {speedByRound.Count(r => r >= 1)} of {speedByRound.Count} at 1.00x or more)");
        output.WriteLine($"state hash (a checkpoint): {stateHashUs,9:F1} us at the end of the run");
        var virtualSizes = Sizes("virtual-clock trace", trace, icount, output);
        JsonObject hostSizes;
        var host = new MemoryStream();
        using (var s = new LiveSession(new LiveRequest
        {
            Kernel = kernel, ImageName = "bench", Machine = options, Trace = host, ConsoleOutput = Stream.Null,
            CheckpointInterval = checkpointInterval, Clock = ClockKind.Host, MaxInstructions = maxInstructions,
        }))
        {
            var r = Limited(s);
            hostSizes = Sizes("host-clock trace", host.ToArray(), r.Exit.Icount, output);
        }
        if (json)
            stdout.WriteLine(new JsonObject
            {
                ["benchmark"] = "guest",
                ["guest"] = Path.GetFileName(kernelPath),
                ["rounds"] = rounds,
                ["warmupRounds"] = WarmupRounds,
                ["checkpointInterval"] = checkpointInterval,
                ["instructions"] = icount,
                ["run"] = Timing(plain, icount),
                ["runBlockCacheTier"] = Timing(blockCache, icount),
                ["firstCompiledRun"] = Timing(firstUse, icount),
                ["compilingRun"] = Timing(cold, icount),
                ["reusingRun"] = Timing(warm, icount),
                ["compileThresholdForCost"] = low,
                ["oneOffRun"] = Timing(oneOff, icount),
                ["oneOffBlocksCompiled"] = oneOffBlocks,
                ["oneOffIlBytes"] = oneOffIl,
                ["compileThreshold"] = X86Cpu.DefaultCompileThreshold,
                ["blocksCompiled"] = blocksCompiled,
                ["compileMsPer1000Blocks"] = Math.Round(compileMsPer1000, 3),
                ["ilBytesPer1000Blocks"] = blocksCompiled == 0 ? 0 : blockIl * 1000 / blocksCompiled,
                ["hypercalls"] = hypercalls,
                ["nsPerHypercall"] = Math.Round(nsPerHypercall, 1),
                ["runWithoutSelectorCache"] = Timing(uncached, icount),
                ["nsPerHypercallWithoutSelectorCache"] = Math.Round(nsPerHypercallUncached, 1),
                ["stateHashUs"] = Math.Round(stateHashUs, 3),
                ["record"] = Timing(record, icount),
                ["runAllThreadsCpu"] = Timing(best[0].AllThreads, icount),
                ["recordAllThreadsCpu"] = Timing(best[1].AllThreads, icount),
                ["runWall"] = Timing(best[0].Wall, icount),
                ["recordWall"] = Timing(best[1].Wall, icount),
                ["recordWithoutWriterThread"] = Timing(recordInline, icount),
                ["replay"] = Timing(replay, icount),
                ["recordOverheadPercent"] = Math.Round((record / plain - 1) * 100, 3),
                ["recordOverheadPercentAllThreadsCpu"] = Math.Round(overheadAll, 3),
                ["recordOverheadPercentWall"] = Math.Round(overheadWall, 3),
                ["replayToRecordSpeed"] = Math.Round(record / replay, 3),
                ["replayAllThreadsCpu"] = Timing(best[2].AllThreads, icount),
                ["replayWall"] = Timing(best[2].Wall, icount),
                ["replayToRecordSpeedAllThreadsCpu"] = Math.Round(best[1].AllThreads / best[2].AllThreads, 3),
                ["replayToRecordSpeedWall"] = Math.Round(best[1].Wall / best[2].Wall, 3),
                ["replayMedian"] = Timing(median[2], icount),
                ["recordMedian"] = Timing(median[1], icount),
                ["replayToRecordSpeedMedian"] = Math.Round(median[1] / median[2], 3),
                ["recordOverheadPercentPaired"] = Math.Round(overheadPaired, 3),
                ["replayToRecordSpeedPaired"] = Math.Round(speedPaired, 3),
                ["recordNsPerEventPaired"] = Math.Round(recordNsPerEvent, 3),
                ["observeOnly"] = Timing(best[5].Thread, icount),
                ["observeOnlyOverheadPercentPaired"] = Math.Round(observeOverheadPaired, 3),
                ["observeOnlyNsPerEventPaired"] = Math.Round(observeNsPerEvent, 3),
                ["observeOnlyEvents"] = observedEvents,
                ["replayNsPerEventPaired"] = Math.Round(replayNsPerEvent, 3),
                ["involuntaryContextSwitches"] = new JsonObject
                {
                    ["run"] = switches[0], ["record"] = switches[1], ["recordWithoutWriterThread"] = switches[4], ["replay"] = switches[2],
                },
                ["replayToRecordSpeedByRound"] = new JsonArray(speedByRound.Select(r => (JsonNode)Math.Round(r, 3)).ToArray()),
                ["threadMsByRound"] = new JsonObject
                {
                    ["run"] = RoundsMs(threadByRound[0]), ["record"] = RoundsMs(threadByRound[1]), ["replay"] = RoundsMs(threadByRound[2]),
                    ["observeOnly"] = RoundsMs(threadByRound[5]),
                },
                ["virtualClockTrace"] = virtualSizes,
                ["hostClockTrace"] = hostSizes,
            }.ToJsonString(JsonOutput.Options));
        return ExitCodes.Ok;
    }

    /// <summary>CPU time of one state hash (what a checkpoint costs) of a machine at the end of its run, best of 20.</summary>
    private static double StateHashCost(XenMachine machine)
    {
        double best = double.MaxValue;
        for (int i = 0; i < 21; i++)
        {
            var t = ThreadCpuTime.Start();
            machine.StateHash();
            if (i > 0) best = Math.Min(best, t.Seconds);
        }
        return best * 1e6;
    }

    private static JsonObject Timing(double seconds, ulong icount) =>
        new() { ["ms"] = Math.Round(seconds * 1000, 3), ["mips"] = Math.Round(icount / seconds / 1e6, 3) };

    private static JsonObject Sizes(string what, byte[] trace, ulong icount, TextWriter output)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        long events = reader.Stats.EventCount;
        var sizes = new JsonObject
        {
            ["bytes"] = trace.Length,
            ["events"] = events,
            ["rawBytes"] = reader.Stats.UncompressedBytes,
            ["bytesPerMillionInstructions"] = Math.Round(trace.Length / (icount / 1e6), 3),
            ["bytesPerEvent"] = Math.Round((double)trace.Length / Math.Max(1, events), 3),
        };
        output.WriteLine($"{what + ":",-21}{trace.Length,9:N0} bytes, {events:N0} events: {trace.Length / (icount / 1e6),8:F1} bytes per million instructions, {(double)trace.Length / Math.Max(1, events),6:F1} bytes per event ({reader.Stats.UncompressedBytes:N0} raw)");
        return sizes;
    }

    /// <summary>
    /// Rounds run and not counted before the measured ones, the same for every measurement. The .NET
    /// JIT is still replacing hot engine code with tier-1, profile-guided code during the first
    /// rounds (ticker: recording and replay take 75-95 ms in rounds 1-2 and 50-55 ms from round 3 or
    /// 4 on), so with one warm-up round a "best of 5" was the best of the last two or three rounds,
    /// and a run type could be timed before its code had settled (docs/record-replay.md "Measuring").
    /// </summary>
    public const int WarmupRounds = 4;

    /// <summary>
    /// The best times of each measurement over <paramref name="rounds"/> rounds, each round running them
    /// all in turn, after <see cref="WarmupRounds"/> rounds that are not counted; <paramref name="median"/>:
    /// each measurement's median thread CPU time over the same rounds.
    /// </summary>
    private static RunTimes[] Best(int rounds, Func<(RunTimes Times, ulong Icount)>[] runs, out ulong icount, out double[] median) =>
        Best(rounds, runs, out icount, out median, out _);

    /// <param name="measured">Each measurement's figures in every measured round, in round order.</param>
    private static RunTimes[] Best(int rounds, Func<(RunTimes Times, ulong Icount)>[] runs, out ulong icount, out double[] median,
        out List<RunTimes>[] measured)
    {
        var best = new RunTimes[runs.Length];
        Array.Fill(best, RunTimes.Max);
        measured = new List<RunTimes>[runs.Length];
        for (int k = 0; k < runs.Length; k++) measured[k] = [];
        icount = 0;
        for (int i = 0; i < rounds + WarmupRounds; i++)
            for (int k = 0; k < runs.Length; k++)
            {
                var (t, n) = runs[k]();
                if (k == 0) icount = n;
                if (i < WarmupRounds) continue;
                best[k] = best[k].Min(t);
                measured[k].Add(t);
            }
        median = measured.Select(m => Median(m.Select(t => t.Thread).ToList())).ToArray();
        return best;
    }

    /// <summary>
    /// <paramref name="numerator"/>[i] / <paramref name="denominator"/>[i] for every round i: two run
    /// types timed seconds apart in the same round, so a change in the machine's speed between rounds
    /// falls on both and cancels in the ratio (docs/record-replay.md "Measuring").
    /// </summary>
    private static List<double> PerRound(List<double> numerator, List<double> denominator) =>
        numerator.Zip(denominator, (n, d) => n / d).ToList();

    /// <summary>(<paramref name="run"/>[i] - <paramref name="plain"/>[i]) in nanoseconds per event, for every round i (as <see cref="PerRound"/>, a difference instead of a ratio).</summary>
    private static List<double> PerRoundExtra(List<double> run, List<double> plain, long events) =>
        run.Zip(plain, (r, p) => (r - p) * 1e9 / Math.Max(1, events)).ToList();

    private static JsonArray RoundsMs(List<double> seconds) => new(seconds.Select(t => (JsonNode)Math.Round(t * 1000, 6)).ToArray());

    private static long EventCount(byte[] trace)
    {
        using var reader = TraceReader.Open(new MemoryStream(trace));
        return reader.Stats.EventCount;
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        int mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
