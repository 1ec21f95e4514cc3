using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit.Abstractions;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// Recorders killed outright (SIGKILL) at many points, from right after start-up to right after
/// each flush, under both clocks: every trace they leave replays its prefix bit-exactly and says so
/// with exit 12, never 10. Recorders stopped by SIGTERM or SIGINT close their trace: it replays
/// completely with 0 (docs/record-replay.md "Killed and interrupted recorders").
/// </summary>
public class CrashSafetyTests(ITestOutputHelper output)
{
    private sealed record Scenario(string Name, string Guest, string[] Options, bool Input);

    private static readonly Scenario[] Scenarios =
    [
        new("sched host clock + chaos", "sched-pae", ["--clock", "host", "--chaos", "3"], false),
        new("sched virtual clock", "sched", [], false),
        new("echo host clock + input", "echo", ["--clock", "host"], true),
        new("echo virtual clock + input", "echo-pae", [], true),
    ];

    /// <summary>
    /// Starts a recorder; its stdin gets a line every 50 ms when the scenario wants input (kept open).
    /// It starts through `env --default-signal=INT,TERM` because a test runner started from a background
    /// job inherits SIGINT ignored, and a program keeps a signal ignored at start (as shells do): the
    /// SIGINT cases would then wait forever for input instead of testing the recorder's handler.
    /// </summary>
    private static Process StartRecorder(Scenario s, string trace)
    {
        var psi = new ProcessStartInfo("env")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        psi.ArgumentList.Add("--default-signal=INT,TERM");
        psi.ArgumentList.Add("dotnet");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "replayvisor.dll"));
        foreach (string a in new[] { "record", Cli.Guest(s.Guest), "-o", trace }.Concat(s.Options)) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (s.Input)
        {
            var feeder = new Thread(() =>
            {
                try
                {
                    for (int i = 0; i < 200 && !p.HasExited; i++)
                    {
                        p.StandardInput.WriteLine($"line {i}");
                        p.StandardInput.Flush();
                        Thread.Sleep(50);
                    }
                }
                catch (IOException) { }
                catch (InvalidOperationException) { }
            }) { IsBackground = true };
            feeder.Start();
        }
        return p;
    }

    /// <summary>Waits until the trace file has grown <paramref name="growths"/> times after first appearing (0: as soon as it holds bytes).</summary>
    private static void WaitForGrowth(Process p, string trace, int growths)
    {
        long last = 0;
        int seen = -1;
        var deadline = Stopwatch.StartNew();
        while (!p.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            long len = File.Exists(trace) ? new FileInfo(trace).Length : 0;
            if (len > last)
            {
                last = len;
                if (++seen >= growths) return;
            }
            Thread.Sleep(1);
        }
    }

    /// <summary>Replays in-process: the exit code and stderr of `replayvisor replay trace --quiet`.</summary>
    private static (int Code, string Stderr) Replay(string trace)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(["replay", trace, "--quiet"], stdout, stderr);
        return (code, stderr.ToString());
    }

    [Fact]
    public void EveryKilledRecordingReplaysItsPrefixAndSaysSo()
    {
        var cases = Scenarios.SelectMany(s => Enumerable.Range(0, 6).Select(k => (s, k))).ToArray();
        var outcomes = new ConcurrentBag<string>();
        var failures = new ConcurrentBag<string>();
        Parallel.ForEach(cases, new ParallelOptions { MaxDegreeOfParallelism = 2 }, c =>
        {
            string trace = Cli.TempFile("killed.rvt");
            using var p = StartRecorder(c.s, trace);
            WaitForGrowth(p, trace, c.k);
            bool finished = p.HasExited;
            if (!finished) p.Kill();
            p.WaitForExit();
            var (code, stderr) = Replay(trace);
            string what = $"{c.s.Name}, kill after {c.k} growths{(finished ? " (the recorder had finished)" : "")}: replay {code}";
            outcomes.Add(what);
            int expected = finished ? 0 : 12;
            // A recorder that finished on its own between the last look and the kill wrote a complete trace.
            if (code != expected && !(code == 0 && !finished && IsComplete(trace)))
                failures.Add($"{what}, expected {expected}: {stderr.Trim()}");
            if (code != 0 && (stderr.TrimEnd().Split('\n').Length != 1 || stderr.Contains("   at ", StringComparison.Ordinal)))
                failures.Add($"{what}: not one line: {stderr}");
        });
        foreach (string o in outcomes.Order(StringComparer.Ordinal)) output.WriteLine(o);
        Assert.True(cases.Length > 20);
        Assert.True(failures.IsEmpty, string.Join("\n", failures));
    }

    [Fact]
    public void EveryRecordingStoppedBySigtermOrSigintReplaysCompletely()
    {
        var cases = Scenarios.Where(s => s.Name != "echo virtual clock + input")
            .SelectMany(s => new[] { ("TERM", s, 0), ("INT", s, 1), ("TERM", s, 2) }).ToArray();
        var failures = new ConcurrentBag<string>();
        Parallel.ForEach(cases, new ParallelOptions { MaxDegreeOfParallelism = 2 }, c =>
        {
            var (signal, s, k) = c;
            string trace = Cli.TempFile("stopped.rvt");
            using var p = StartRecorder(s, trace);
            WaitForGrowth(p, trace, k);
            if (!p.HasExited)
                using (var kill = Process.Start("kill", $"-{signal} {p.Id}")!) kill.WaitForExit();
            if (!p.WaitForExit(120_000))
            {
                p.Kill();
                p.WaitForExit();
                failures.Add($"{s.Name} SIG{signal} after {k} growths: the recorder did not stop within 120 s of the signal");
                return;
            }
            var (code, stderr) = Replay(trace);
            output.WriteLine($"{s.Name}, SIG{signal} after {k} growths: recorder {p.ExitCode}, replay {code}");
            // 130 when the signal stopped it (0 if it had finished before the signal);
            // 128+signal only when the signal came after the recording was complete, once the handlers were gone.
            bool lateSignal = p.ExitCode == 143 && IsComplete(trace);
            if (p.ExitCode is not (130 or 0 or 14) && !lateSignal) failures.Add($"{s.Name} SIG{signal}: recorder exit {p.ExitCode}");
            if (code != 0) failures.Add($"{s.Name} SIG{signal} after {k} growths: replay {code}: {stderr.Trim()}");
        });
        Assert.True(failures.IsEmpty, string.Join("\n", failures));
    }

    private static bool IsComplete(string trace)
    {
        using var r = Engine.Trace.TraceReader.Open(File.OpenRead(trace));
        return r.Complete;
    }
}
