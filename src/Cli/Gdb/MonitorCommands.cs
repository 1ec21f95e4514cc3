using System.Globalization;
using Replayvisor.Cli.Debug;
using Replayvisor.Replay.Stepping;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Gdb;

/// <summary>A monitor command that could not run; its message goes back to gdb's console.</summary>
public sealed class MonitorException(string message) : Exception(message);

/// <summary>gdb's `monitor` commands: when, goto N, events [N].</summary>
public static class MonitorCommands
{
    public const string Help = "monitor commands: when | goto ICOUNT | events [N]\n";

    public static string Run(TimeTravelSession s, string command)
    {
        var words = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (words.Length == 0 || words[0] == "help") return Help;
        switch (words[0])
        {
            case "when":
                return $"{Debugger.Position(s)}, event index {s.EventIndex}\n";
            case "goto" when words.Length == 2 && ulong.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong n):
                var stop = s.Goto(n);
                return stop.Kind == StopKind.EndOfTrace
                    ? $"the trace ends at instruction {s.Icount} (before {n})\n"
                    : $"now at instruction {s.Icount} (gdb: 'maintenance flush register-cache' shows its registers; docs/gdbserver.md rv-goto does both)\n";
            case "goto":
                throw new MonitorException("usage: monitor goto ICOUNT (a decimal instruction count)");
            case "events":
                int count = 5;
                if (words.Length == 2 && (!int.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out count) || count is < 1 or > 1000))
                    throw new MonitorException("usage: monitor events [N] (1 to 1000)");
                return TraceNeighbourhood.Text(s, count);
            default:
                throw new MonitorException($"unknown monitor command '{words[0]}'; " + Help.TrimEnd());
        }
    }
}
