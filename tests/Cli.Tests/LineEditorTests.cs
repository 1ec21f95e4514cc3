using System.Text;
using Replayvisor.Cli.Debug;

namespace Replayvisor.Cli.Tests;

/// <summary>
/// The debugger's line editor on a narrow terminal: the row it draws is played on a one-row
/// terminal model (carriage return, erase to the end, cursor left, printable characters), and a
/// row that would reach the last column (where a real terminal wraps, and the next redraw's
/// carriage return no longer reaches the prompt) fails the test.
/// </summary>
public sealed class LineEditorTests
{
    private const string Prompt = "(rv) ";
    private const int Width = 30;

    [Fact]
    public void ALineLongerThanTheTerminalScrollsSidewaysOnOneRow()
    {
        string text = "watch *(int*)0x40001000 if the value is 0x12345678 and more";
        var keys = text.Select(Key).ToList();
        var term = new OneRowTerminal(Width);
        string? read = Read(keys, term, row => Assert.True(row.Cursor < Width - 1 || row.Cursor == Width - 1 && row.Text.Length < Width,
            $"the cursor reached column {row.Cursor} of a {Width}-column terminal: '{row.Text}'"));
        Assert.Equal(text, read);
        // At the end, the row is the prompt and the line's tail, with the cursor after it.
        int room = Width - Prompt.Length - 1;
        Assert.Equal(Prompt + text[^room..], term.Text);
        Assert.Equal(Width - 1, term.Cursor);
    }

    [Fact]
    public void HomeAndArrowsKeepTheCursorOnTheCharacterItEdits()
    {
        string text = new string('a', 40) + "XYZ" + new string('b', 40);
        var keys = text.Select(Key).ToList();
        keys.Add(Special(ConsoleKey.Home));
        for (int i = 0; i < 41; i++) keys.Add(Special(ConsoleKey.RightArrow)); // onto 'Y'
        keys.Add(Special(ConsoleKey.Delete));
        keys.Add(Key('q'));
        var term = new OneRowTerminal(Width);
        var seen = new List<(string Text, int Cursor)>();
        string? read = Read(keys, term, row => seen.Add(row));
        Assert.Equal(new string('a', 40) + "XqZ" + new string('b', 40), read);
        // After Home the row starts with the line's start.
        var home = seen[text.Length];
        Assert.Equal(Prompt + text[..(Width - Prompt.Length - 1)], home.Text);
        Assert.Equal(Prompt.Length, home.Cursor);
        // The last redraw shows the inserted 'q' just left of the cursor and 'Z' under it.
        var last = seen[^1];
        Assert.Equal('q', last.Text[last.Cursor - 1]);
        Assert.Equal('Z', last.Text[last.Cursor]);
        Assert.All(seen, row => Assert.True(row.Text.Length <= Width - 1, $"row of {row.Text.Length} columns: '{row.Text}'"));
    }

    [Fact]
    public void AShortLineIsDrawnWholeAsBefore()
    {
        var term = new OneRowTerminal(80);
        string? read = Read("si 5".Select(Key).ToList(), term, _ => { });
        Assert.Equal("si 5", read);
        Assert.Equal(Prompt + "si 5", term.Text);
        Assert.Equal(1, term.Lines);
    }

    private static string? Read(List<ConsoleKeyInfo> keys, OneRowTerminal term, Action<(string Text, int Cursor)> afterKey)
    {
        keys.Add(Special(ConsoleKey.Enter));
        int next = 0;
        var editor = new LineEditor(() =>
        {
            if (next > 0 && next < keys.Count) afterKey((term.Text, term.Cursor));
            return keys[next++];
        }, term, () => term.Width);
        return editor.ReadLine(Prompt);
    }

    private static ConsoleKeyInfo Key(char c) => new(c, char.IsAsciiLetterUpper(c) ? (ConsoleKey)c : c is >= 'a' and <= 'z' ? (ConsoleKey)char.ToUpperInvariant(c) : ConsoleKey.NoName,
        char.IsAsciiLetterUpper(c), false, false);

    private static ConsoleKeyInfo Special(ConsoleKey k) => new('\0', k, false, false, false);

    /// <summary>One terminal row: what the editor writes, interpreted; <see cref="Text"/> is the row's content.</summary>
    private sealed class OneRowTerminal(int width) : TextWriter
    {
        private readonly StringBuilder _row = new();
        private readonly StringBuilder _escape = new();
        public int Width { get; } = width;
        public int Cursor { get; private set; }
        public string Text => _row.ToString();
        public int Lines { get; private set; }
        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char c)
        {
            if (_escape.Length > 0)
            {
                _escape.Append(c);
                if (char.IsAsciiLetter(c)) Escape(_escape.ToString());
                return;
            }
            switch (c)
            {
                case '\u001b': _escape.Append(c); break;
                case '\r': Cursor = 0; break;
                case '\n': Lines++; break; // the row as it was when Enter ended it stays readable
                default:
                    Assert.True(Cursor < Width, $"wrote past the last column ({Cursor} of {Width})");
                    if (Cursor < _row.Length) _row[Cursor] = c; else _row.Append(c);
                    Cursor++;
                    break;
            }
        }

        private void Escape(string seq)
        {
            _escape.Clear();
            if (seq == "\u001b[K") { if (Cursor < _row.Length) _row.Length = Cursor; return; }
            if (seq.EndsWith('D')) { Cursor = Math.Max(0, Cursor - int.Parse(seq[2..^1], System.Globalization.CultureInfo.InvariantCulture)); return; }
            Assert.Fail($"unexpected escape sequence {seq[1..]}");
        }
    }
}
