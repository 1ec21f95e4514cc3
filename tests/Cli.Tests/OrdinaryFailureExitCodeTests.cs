using System.Buffers.Binary;
using Replayvisor.Engine.Trace;

namespace Replayvisor.Cli.Tests;

/// <summary>Ordinary failures (a full disk, an unwritable output, a damaged header, a lying ELF note) get their documented exit code and one printable line, never 70.</summary>
public class OrdinaryFailureExitCodeTests
{
    private static readonly Lazy<byte[]> Hello = new(() =>
    {
        string f = Cli.TempFile("hello.rvt");
        var r = Cli.Run("record", Cli.Guest("hello"), "-o", f);
        Assert.True(r.Code == 0, r.ToString());
        return File.ReadAllBytes(f);
    });

    /// <summary>The trace re-written with one header option changed (a new, valid trace: every checksum agrees).</summary>
    private static string WithOption(string key, string value)
    {
        using var reader = TraceReader.Open(new MemoryStream(Hello.Value));
        var options = reader.Header.Options.ToDictionary(kv => kv.Key, kv => kv.Value);
        options[key] = value;
        var h = reader.Header;
        var header = new TraceHeader(h.EngineBuild, h.GuestImageSha256, h.GuestImageName, h.GuestKind, options);
        var output = new MemoryStream();
        using (var w = new TraceWriter(output, header, reader.GuestImage.Span, leaveOpen: true))
        {
            foreach (var e in reader.ReadEvents()) w.Append(e);
            w.Complete(reader.Summary!);
        }
        string f = Cli.TempFile("option.rvt");
        File.WriteAllBytes(f, output.ToArray());
        return f;
    }

    [Theory]
    [InlineData("memory-mib", "1e3")]
    [InlineData("memory-mib", "0")]
    [InlineData("max-instructions", "abc")]
    [InlineData("epoch-seconds", "")]
    [InlineData("checkpoint-interval", "-5")]
    [InlineData("chaos-seed", "seven")]
    [InlineData("clock", "sundial")]
    public void AHeaderOptionThatDoesNotParseIsADamagedTrace(string key, string value)
    {
        var r = Cli.Run("replay", WithOption(key, value), "--quiet");
        Cli.AssertOneLineError(r, 9, $"option {key}=");
    }

    [Fact]
    public void AHugeHostileOptionValueIsCutAndEscapedInTheMessage()
    {
        var r = Cli.Run("replay", WithOption("memory-mib", "\u001b[2J" + new string('9', 5000)), "--quiet");
        Cli.AssertOneLineError(r, 9, "option memory-mib=");
        Assert.DoesNotContain('\u001b', r.Stderr);
        Assert.True(r.Stderr.Length < 300, r.Stderr);
    }

    [Fact]
    public void RecordingToAFullDeviceIsAnIoError() =>
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", "/dev/full"), 74, "/dev/full: cannot write");

    /// <summary>
    /// The trace goes to a pipe whose reader leaves after 100,000 bytes: the header and guest image
    /// get through (written and flushed before the guest runs), a later chunk, written on the
    /// writer thread, fails (EPIPE). The recorder reports that error as its one line, exit 74.
    /// </summary>
    [Fact]
    public void AWriteErrorOnTheTraceWriterThreadIsAnIoError()
    {
        string fifo = Cli.TempFile("trace.fifo");
        var r = Cli.Shell($"mkfifo '{fifo}' && {{ head -c 100000 '{fifo}' > /dev/null & }} && dotnet \"$RV\" record '{Cli.Guest("ticker-pae")}' --clock host -o '{fifo}' > /dev/null");
        Cli.AssertOneLineError(r, 74, $"{fifo}: cannot write");
    }

    [Fact]
    public void AConsoleThatCannotBeWrittenIsAnIoError() =>
        Cli.AssertOneLineError(Cli.Shell($"dotnet \"$RV\" run '{Cli.Guest("hello")}' > /dev/full"), 74, "standard output: cannot write");

    [Fact]
    public void InfoOnAFullStdoutIsAnIoError() =>
        Cli.AssertOneLineError(Cli.Shell($"dotnet \"$RV\" info '{WithOption("cmdline", "x")}' > /dev/full"), 74, "I/O error");

    [Fact]
    public void AnElfNoteWithAnAbsurdSizeIsNotALoadableKernel()
    {
        byte[] elf = File.ReadAllBytes(Cli.Guest("hello"));
        uint phoff = BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(0x1C));
        int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x2A));
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(0x2C));
        int notes = -1;
        for (int i = 0; i < phnum; i++)
        {
            int ph = (int)phoff + i * phentsize;
            if (BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(ph)) == 4) notes = (int)BinaryPrimitives.ReadUInt32LittleEndian(elf.AsSpan(ph + 4));
        }
        Assert.True(notes > 0, "hello.elf has no PT_NOTE");
        BinaryPrimitives.WriteUInt32LittleEndian(elf.AsSpan(notes), 0xFFFFF004); // namesz of the first note
        string f = Cli.TempFile("absurd-note.elf");
        File.WriteAllBytes(f, elf);
        Cli.AssertOneLineError(Cli.Run("run", f), 5, "namesz 0xfffff004");
    }
}
