using System.Text;

namespace Replayvisor.Cli.Debug;

/// <summary>
/// Reads command lines on a terminal with editing (left/right, home/end, backspace/delete,
/// Ctrl-A/E/U/K) and history (up/down). Off a terminal, plain lines from stdin.
/// A line longer than the terminal is shown as a window that scrolls sideways with the cursor
/// (like readline's horizontal-scroll-mode), so it stays on one row: the redraw returns to the
/// row's start with a carriage return, which a wrapped line would defeat.
/// </summary>
public sealed class LineEditor
{
    private readonly List<string> _history = [];
    private readonly Func<ConsoleKeyInfo> _readKey;
    private readonly TextWriter _out;
    private readonly Func<int> _width;
    private readonly Func<string?>? _plainLine;

    /// <summary>The process's terminal; plain lines when stdin is not one.</summary>
    public LineEditor() : this(() => Console.ReadKey(intercept: true), Console.Out, TerminalWidth,
        Console.IsInputRedirected ? Console.In.ReadLine : null) { }

    /// <summary>
    /// A terminal given by its keys, its output and its width in columns (read at every redraw: it
    /// may be resized); <paramref name="plainLine"/>, when given, reads lines instead (no terminal).
    /// </summary>
    public LineEditor(Func<ConsoleKeyInfo> readKey, TextWriter output, Func<int> width, Func<string?>? plainLine = null)
    {
        _readKey = readKey;
        _out = output;
        _width = width;
        _plainLine = plainLine;
    }

    public string? ReadLine(string prompt)
    {
        if (_plainLine != null) return _plainLine();
        _out.Write(prompt);
        var line = new StringBuilder();
        int cursor = 0, back = _history.Count, scroll = 0;
        while (true)
        {
            var key = _readKey();
            switch (key.Key)
            {
                case ConsoleKey.Enter:
                    _out.WriteLine();
                    string text = line.ToString();
                    if (text.Trim().Length > 0 && (_history.Count == 0 || _history[^1] != text)) _history.Add(text);
                    return text;
                case ConsoleKey.Backspace when cursor > 0:
                    line.Remove(--cursor, 1);
                    break;
                case ConsoleKey.Delete when cursor < line.Length:
                    line.Remove(cursor, 1);
                    break;
                case ConsoleKey.LeftArrow when cursor > 0: cursor--; break;
                case ConsoleKey.RightArrow when cursor < line.Length: cursor++; break;
                case ConsoleKey.Home: cursor = 0; break;
                case ConsoleKey.End: cursor = line.Length; break;
                case ConsoleKey.UpArrow when back > 0:
                    line.Clear().Append(_history[--back]);
                    cursor = line.Length;
                    break;
                case ConsoleKey.DownArrow when back < _history.Count:
                    back++;
                    line.Clear().Append(back < _history.Count ? _history[back] : "");
                    cursor = line.Length;
                    break;
                default:
                    if ((key.Modifiers & ConsoleModifiers.Control) != 0)
                    {
                        if (key.Key == ConsoleKey.A) cursor = 0;
                        else if (key.Key == ConsoleKey.E) cursor = line.Length;
                        else if (key.Key == ConsoleKey.U) { line.Remove(0, cursor); cursor = 0; }
                        else if (key.Key == ConsoleKey.K) line.Remove(cursor, line.Length - cursor);
                        else if (key.Key == ConsoleKey.D && line.Length == 0) { _out.WriteLine(); return null; }
                    }
                    else if (!char.IsControl(key.KeyChar)) line.Insert(cursor++, key.KeyChar);
                    break;
            }
            scroll = Redraw(prompt, line, cursor, scroll);
        }
    }

    /// <summary>
    /// Redraws the row: the prompt and the part of the line that fits, from <paramref name="scroll"/>
    /// moved just enough to keep the cursor in view; the last column stays empty, so that the
    /// terminal never wraps. Returns the new scroll offset.
    /// </summary>
    private int Redraw(string prompt, StringBuilder line, int cursor, int scroll)
    {
        int room = Math.Max(1, _width() - prompt.Length - 1);
        // The cursor may rest in the column after the shown text only at the line's end; inside the
        // line it stays on a shown character (the one it edits).
        int last = cursor < line.Length ? room - 1 : room;
        if (cursor < scroll) scroll = cursor;
        else if (cursor - scroll > last) scroll = cursor - last;
        scroll = Math.Min(scroll, Math.Max(0, line.Length - room)); // no empty room after a deletion near the end
        int shown = Math.Min(room, line.Length - scroll);
        _out.Write("\r" + prompt + line.ToString(scroll, shown) + "\u001b[K");
        int left = scroll + shown - cursor;
        if (left > 0) _out.Write($"\u001b[{left}D");
        return scroll;
    }

    /// <summary>The terminal's width in columns; 80 when it cannot be read.</summary>
    private static int TerminalWidth()
    {
        try { return Console.WindowWidth > 0 ? Console.WindowWidth : 80; }
        catch (IOException) { return 80; }
    }
}
