using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Replayvisor.Cli.Tests;

/// <summary>A recorder stopped by SIGTERM closes its trace; one killed outright leaves a replayable prefix.</summary>
public class SignalTests
{
    private static Process StartRecording(string trace)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in new[] { Path.Combine(AppContext.BaseDirectory, "replayvisor.dll"), "record", Cli.Guest("echo"), "-o", trace })
            psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static void WaitForLine(Process p, string text)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (DateTime.UtcNow < deadline)
        {
            string? line = p.StandardOutput.ReadLine();
            if (line == null) throw new InvalidOperationException("the recorder ended early: " + p.StandardError.ReadToEnd());
            if (line.Contains(text, StringComparison.Ordinal)) return;
        }
        throw new TimeoutException("no line containing " + text);
    }

    [Fact]
    public void SigtermFinishesTheTraceCleanly()
    {
        string trace = Cli.TempFile("term.rvt");
        using var p = StartRecording(trace);
        WaitForLine(p, "ready");
        p.StandardInput.WriteLine("before the signal");
        p.StandardInput.Flush();
        WaitForLine(p, "before the signal");
        using (var kill = Process.Start("kill", $"-TERM {p.Id}")) kill.WaitForExit();
        Assert.True(p.WaitForExit(60_000));
        Assert.Equal(130, p.ExitCode);
        var info = Cli.Run("info", trace);
        Assert.Contains("complete", info.Stdout);
        Assert.DoesNotContain("INCOMPLETE", info.Stdout);
        var r = Cli.Run("replay", trace);
        Assert.True(r.Code == 0, r.ToString());
        Assert.Contains("before the signal", r.Stdout);
    }

    [Fact]
    public void AKilledRecorderLeavesAReplayablePrefix()
    {
        string trace = Cli.TempFile("killed.rvt");
        using var p = StartRecording(trace);
        WaitForLine(p, "ready");
        p.StandardInput.WriteLine("kept line");
        p.StandardInput.Flush();
        WaitForLine(p, "kept line");
        Thread.Sleep(500);
        p.Kill();
        p.WaitForExit();
        var info = Cli.Run("info", trace);
        Assert.True(info.Code == 0, info.ToString());
        Assert.Contains("INCOMPLETE", info.Stdout);
        // The input reached the trace before the kill (the recorder flushes after every input)...
        var input = Cli.Run("dump", trace, "--kind", "console-in");
        Assert.Contains("kept line", input.Stdout);
        // ...and the complete chunks replay bit-exactly, up to that input; exit 12 says only a prefix was verified.
        var r = Cli.Run("replay", trace);
        Cli.AssertOneLineError(r, 12, "incomplete");
        Assert.Contains("echo: ready", r.Stdout);
        Assert.Contains("replayed bit-exactly", r.Stderr);
    }

    [Fact]
    public void DiffOfARecordingStoppedBySigtermAgreesWithTheWholeRunUpToTheStop()
    {
        // echo waits for input after "ready": stopped there, and the same run given its lines there instead, to the end.
        string stopped = Cli.TempFile("stopped.rvt"), whole = Cli.TempFile("whole.rvt");
        using (var p = StartRecording(stopped))
        {
            WaitForLine(p, "ready");
            using (var kill = Process.Start("kill", $"-TERM {p.Id}")) kill.WaitForExit();
            Assert.True(p.WaitForExit(60_000));
            Assert.Equal(130, p.ExitCode);
        }
        using (var p = StartRecording(whole))
        {
            WaitForLine(p, "ready");
            p.StandardInput.Write("abc\nquit\n");
            p.StandardInput.Close();
            Assert.True(p.WaitForExit(60_000));
            Assert.Equal(0, p.ExitCode);
        }
        var r = Cli.Run("diff", whole, stopped);
        Assert.True(r.Code == 15, r.ToString());
        Assert.Equal("", r.Stderr);
        Assert.Matches($@"the runs agree up to instruction [\d,]+, where B \({Regex.Escape(stopped)}\) was stopped on request \(Ctrl-C or SIGTERM\); A goes on to instruction [\d,]+ \(GuestShutdown\)\n", r.Stdout);
        Assert.DoesNotContain("divergence", r.Stdout);
        var ba = Cli.Run("diff", stopped, whole, "--json");
        Assert.True(ba.Code == 15, ba.ToString());
        JsonSchemaCheck.AssertValid("diff.schema.json", ba.Stdout);
        var root = JsonDocument.Parse(ba.Stdout).RootElement;
        Assert.Equal("stopped", root.GetProperty("result").GetString());
        Assert.Equal("a", root.GetProperty("endsEarly").GetProperty("side").GetString());
        Assert.Equal("stopped on request (Ctrl-C or SIGTERM)", root.GetProperty("endsEarly").GetProperty("reason").GetString());
        Assert.True(root.GetProperty("endsEarly").GetProperty("notCompared").GetInt32() > 0);
    }
}
