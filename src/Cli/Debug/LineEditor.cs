using System.Text;

namespace Replayvisor.Cli.Debug;

/// <summary>
/// Reads command lines on a terminal with editing (left/right, home/end, backspace/delete,
/// Ctrl-A/E/U/K) and history (up/down). Off a terminal, plain lines from stdin.
/// </summary>
public sealed class LineEditor
{
    private readonly List<string> _history = [];

    public string? ReadLine(string prompt)
    {
        if (Console.IsInputRedirected) return Console.In.ReadLine();
        Console.Write(prompt);
        var line = new StringBuilder();
        int cursor = 0, back = _history.Count;
        while (true)
        {
            var key = Console.ReadKey(intercept: true);
            switch (key.Key)
            {
                case ConsoleKey.Enter:
                    Console.WriteLine();
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
                        else if (key.Key == ConsoleKey.D && line.Length == 0) { Console.WriteLine(); return null; }
                    }
                    else if (!char.IsControl(key.KeyChar)) line.Insert(cursor++, key.KeyChar);
                    break;
            }
            // Redraw the line and put the cursor back.
            Console.Write("\r" + prompt + line + "\u001b[K");
            int left = line.Length - cursor;
            if (left > 0) Console.Write($"\u001b[{left}D");
        }
    }
}
