using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Debug;

/// <summary>`replayvisor debug trace.rvt [--batch FILE]`: the interactive time-travel debugger.</summary>
public static class DebugCommand
{
    public static int Run(string path, string? batch, uint snapshotMemoryMiB, TextWriter stdout, TextWriter stderr)
    {
        using var reader = TraceFiles.Open(path);
        TextReader? script = null;
        if (batch != null)
        {
            script = new StreamReader(InputFiles.OpenRead(batch));
        }
        TimeTravelSession session;
        try { session = new TimeTravelSession(reader, new TimeTravelOptions { SnapshotMemoryBytes = snapshotMemoryMiB * 1024L * 1024 }); }
        catch (BootImageException e) { throw new CliException(ExitCodes.TraceDamaged, $"{path}: the embedded guest image does not load: {e.Message}"); }
        var debugger = new Debugger(session);
        bool interactive = script == null && !Console.IsInputRedirected;
        var editor = new LineEditor();
        if (interactive)
        {
            string keyframes = session.Keyframes.Count > 0 ? $", {session.Keyframes.Count} keyframes" : session.KeyframesIgnored > 0 ? $", {session.KeyframesIgnored} keyframes of another engine build (ignored)" : "";
            stdout.WriteLine($"{path}: {reader.Header.GuestImageName}, {reader.Summary?.FinalIcount.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) ?? "?"} instructions{keyframes}. 'help' lists the commands.");
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; session.Interrupt(); };
        }
        using (script)
        {
            while (true)
            {
                string? line = script != null ? script.ReadLine() : editor.ReadLine("(rv) ");
                if (line == null) break;
                if (!interactive) stdout.WriteLine("(rv) " + line);
                string? output;
                session.ClearInterrupt(); // a Ctrl-C at the prompt does not end the next command
                try { output = debugger.Execute(line); }
                catch (DebugCommandException e) { output = "error: " + e.Message + "\n"; }
                catch (TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
                if (output == null) break;
                stdout.Write(output);
                stdout.Flush();
            }
        }
        return ExitCodes.Ok;
    }
}
