namespace Replayvisor.Engine.Xen;

/// <summary>
/// Which of the guest's two consoles reaches the console sink (docs/xen-model.md, "Consoles"):
/// the hypervisor console (console_io, Xen's own serial line) and the PV console ring
/// (xenconsoled, what `xl console` shows). Both are always recorded; this only chooses what is shown.
/// </summary>
public enum ConsoleView : byte
{
    /// <summary>The ring once the guest has written to it; before that (and for dom0, which has no ring) console_io.</summary>
    Auto,
    Ring,
    Hypervisor,
    Both,
}

/// <summary>Names of the <see cref="ConsoleView"/> values on the command line and in trace headers.</summary>
public static class ConsoleViews
{
    public static string[] Names => ["auto", "ring", "hypervisor", "both"];

    public static string Name(ConsoleView v) => Names[(int)v];

    public static bool TryParse(string? s, out ConsoleView view)
    {
        int i = Array.IndexOf(Names, s);
        view = i < 0 ? ConsoleView.Auto : (ConsoleView)i;
        return i >= 0;
    }
}

/// <summary>Where a piece of console output came from.</summary>
public enum ConsoleSource : byte { Hypervisor, Ring }
