
namespace Replayvisor.Cli.Tests;

/// <summary>
/// Bad input that once ended in an internal error (exit 70) or lost a file: an empty path, a trace
/// read from a pipe, a directory where a file belongs, a bad kernel or a damaged trace given to
/// `bench`, an output path that names the command's own input, a kernel refused by the Xen profile.
/// </summary>
public class BadInputTests
{
    private static readonly Lazy<string> Hello = new(() =>
    {
        string f = Cli.TempFile("hello.rvt");
        var r = Cli.Run("record", Cli.Guest("hello"), "-o", f);
        Assert.True(r.Code == 0, r.ToString());
        return f;
    });

    [Theory]
    [InlineData("<kernel.elf>", "run", "")]
    [InlineData("--output", "record", "KERNEL", "-o", "")]
    [InlineData("<trace.rvt>", "info", "")]
    [InlineData("<trace.rvt>", "replay", "")]
    [InlineData("<a.rvt>", "diff", "", "TRACE")]
    [InlineData("--output", "export", "TRACE", "-o", "")]
    [InlineData("--output", "index", "TRACE", "-o", "")]
    [InlineData("--batch", "debug", "TRACE", "--batch", "")]
    [InlineData("--guest", "bench", "--guest", "")]
    [InlineData("--trace", "bench", "--trace", "")]
    public void AnEmptyPathIsMisuse(string names, params string[] args)
    {
        args = args.Select(a => a == "KERNEL" ? Cli.Guest("hello") : a == "TRACE" ? Hello.Value : a).ToArray();
        Cli.AssertOneLineError(Cli.Run(args), 2, $"{names}: an empty path names no file");
    }

    [Fact]
    public void ATraceFromAPipeIsRefusedWithOneLine() =>
        Cli.AssertOneLineError(Cli.Shell($"cat '{Hello.Value}' | dotnet '{Path.Combine(AppContext.BaseDirectory, "replayvisor.dll")}' info /dev/stdin"),
            74, "/dev/stdin: cannot read a trace from a pipe");

    private static readonly string Rv = Path.Combine(AppContext.BaseDirectory, "replayvisor.dll");

    /// <summary>index renames a new file into place: over a FIFO (or /dev/null) that would replace the special file with a trace.</summary>
    [Fact]
    public void IndexRefusesToReplaceSomethingThatIsNotARegularFile()
    {
        string fifo = Cli.TempFile("trace.fifo");
        var r = Cli.Shell($"mkfifo '{fifo}' && dotnet '{Rv}' index '{Hello.Value}' -o '{fifo}'");
        Cli.AssertOneLineError(r, 74, $"{fifo}: cannot write: not a regular file");
        Assert.Equal(0, Cli.Shell($"test -p '{fifo}'").Code);
    }

    /// <summary>In-place index of a relative symbolic link indexes the file it names; the link stays a link.</summary>
    [Fact]
    public void IndexThroughARelativeSymbolicLinkIndexesTheFileItNames()
    {
        string real = Cli.TempFile("real.rvt");
        File.Copy(Path.Combine(Cli.RepoRoot, "traces", "sched-chaos.rvt"), real); // 61,560,367 instructions
        string dir = Path.GetDirectoryName(real)!;
        var r = Cli.Shell($"cd '{dir}' && ln -s real.rvt link.rvt && dotnet '{Rv}' index link.rvt --interval 16777216");
        Assert.True(r.Code == 0, r.ToString());
        Assert.NotNull(new FileInfo(Path.Combine(dir, "link.rvt")).LinkTarget);
        using var reader = Engine.Trace.TraceReader.Open(File.OpenRead(real));
        Assert.True(reader.Keyframes.Count > 0, "the file the link names was not indexed");
    }

    [Fact]
    public void RecordRefusesARelativeLinkToItsKernel()
    {
        string kernel = Cli.TempFile("k.elf");
        File.Copy(Cli.Guest("hello"), kernel);
        var r = Cli.Shell($"cd '{Path.GetDirectoryName(kernel)}' && ln -s k.elf link.elf && dotnet '{Rv}' record k.elf -o link.elf");
        Cli.AssertOneLineError(r, 2, "link.elf: is the kernel itself");
        Assert.Equal(File.ReadAllBytes(Cli.Guest("hello")), File.ReadAllBytes(kernel));
    }

    /// <summary>A closed standard output (`>&-`) is an I/O error (74), and a closed standard error still leaves the exit code (not an abort).</summary>
    [Fact]
    public void ClosedStandardStreamsAreIoErrorsNotCrashes()
    {
        Cli.AssertOneLineError(Cli.Shell($"dotnet '{Rv}' info '{Hello.Value}' >&-"), 74, "I/O error");
        Cli.AssertOneLineError(Cli.Shell($"dotnet '{Rv}' run '{Cli.Guest("hello")}' >&-"), 74, "standard output: cannot write");
        Cli.AssertOneLineError(Cli.Shell($"dotnet '{Rv}' replay '{Hello.Value}' >&-"), 74, "standard output: cannot write");
        var r = Cli.Shell($"dotnet '{Rv}' run /no/such/kernel.elf 2>&-");
        Assert.True(r.Code == 6, r.ToString());
    }

    /// <summary>An index stopped by SIGTERM (or Ctrl-C) removes its temporary file and leaves the trace as it was, then ends by the signal.</summary>
    [Fact]
    public void AnInterruptedIndexLeavesNoTemporaryFileBehind()
    {
        string trace = Cli.TempFile("sched.rvt");
        var rec = Cli.Run("record", Cli.Guest("sched-pae"), "-o", trace);
        Assert.True(rec.Code == 0, rec.ToString());
        byte[] before = File.ReadAllBytes(trace);
        string dir = Path.GetDirectoryName(trace)!;
        // In one shell: start the index, wait for its temporary file, let it work a moment (hundreds of keyframes at the
        // closest interval allowed, about 5 ms of CPU each, to go), SIGTERM it.
        var r = Cli.Shell($"cd '{dir}' && {{ dotnet '{Rv}' index sched.rvt --interval 262144 & }} && pid=$! && n=0 && " +
            "while ! ls .sched.rvt.indexing-* >/dev/null 2>&1 && [ $n -lt 6000 ]; do sleep 0.02; n=$((n+1)); done && sleep 0.3 && " +
            "kill -TERM $pid; wait $pid; echo \"exit $?\"");
        Assert.True(r.Stdout.Contains("exit 143", StringComparison.Ordinal), r.ToString()); // ended by the signal (128 + SIGTERM)
        Assert.Contains("index interrupted", r.Stderr);
        Assert.Empty(Directory.GetFiles(dir, ".sched.rvt.indexing-*"));
        Assert.Equal(before, File.ReadAllBytes(trace));
    }

    /// <summary>diff's exit 22 is for two arguments naming the same file (docs/diff.md), a symbolic link to it included.</summary>
    [Fact]
    public void DiffOfATraceAndALinkToItIsATraceComparedWithItself()
    {
        string dir = Path.GetDirectoryName(Hello.Value)!;
        string link = Path.Combine(dir, "link.rvt");
        if (!File.Exists(link)) File.CreateSymbolicLink(link, Path.GetFileName(Hello.Value));
        Cli.AssertOneLineError(Cli.Run("diff", Hello.Value, link), 22, "compared with itself");
    }

    /// <summary>An output path that is a directory, or in a directory that does not exist, says so (not "access denied").</summary>
    [Fact]
    public void AnOutputPathThatCannotBeAFileSaysWhy()
    {
        string dir = Path.GetDirectoryName(Cli.TempFile("x"))!;
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", dir), 74, $"{dir}: cannot write: is a directory");
        Cli.AssertOneLineError(Cli.Run("export", Hello.Value, "-o", dir), 74, $"{dir}: cannot write: is a directory");
        string missing = Path.Combine(dir, "missing", "t.rvt");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", missing), 74, $"{missing}: cannot write: its directory does not exist");
    }

    [Fact]
    public void ADirectoryWhereAFileBelongsIsNamedAsOne()
    {
        string dir = Path.GetDirectoryName(Cli.TempFile("x"))!;
        Cli.AssertOneLineError(Cli.Run("debug", Hello.Value, "--batch", dir), 74, $"{dir}: is a directory, not a file");
        Cli.AssertOneLineError(Cli.Run("info", dir), 74, $"{dir}: is a directory, not a file");
        Cli.AssertOneLineError(Cli.Run("run", dir), 74, $"{dir}: is a directory, not a file");
    }

    [Fact]
    public void BenchRefusesAKernelThatDoesNotLoad()
    {
        string f = Cli.TempFile("notes.txt");
        File.WriteAllText(f, "this is not a kernel\n");
        Cli.AssertOneLineError(Cli.Run("bench", "--guest", f, "--rounds", "1"), 5, "not an ELF file");
    }

    [Fact]
    public void BenchOnADamagedTraceIsADamagedTrace()
    {
        byte[] trace = File.ReadAllBytes(Hello.Value);
        trace[TraceEdit.LastEventChunkOffset(trace) + 24] ^= 0xFF; // a payload byte: its CRC no longer matches
        string f = Cli.TempFile("damaged.rvt");
        File.WriteAllBytes(f, trace);
        Cli.AssertOneLineError(Cli.Run("bench", "--trace", f, "--rounds", "1"), 9, "damaged chunk");
    }

    [Fact]
    public void RecordRefusesToWriteTheTraceOverItsOwnKernel()
    {
        string kernel = Cli.TempFile("hello.elf");
        File.Copy(Cli.Guest("hello"), kernel);
        Cli.AssertOneLineError(Cli.Run("record", kernel, "-o", kernel), 2, "is the kernel itself");
        Assert.Equal(File.ReadAllBytes(Cli.Guest("hello")), File.ReadAllBytes(kernel));
        string link = Path.Combine(Path.GetDirectoryName(kernel)!, "link.elf");
        File.CreateSymbolicLink(link, kernel);
        Cli.AssertOneLineError(Cli.Run("record", kernel, "-o", link), 2, "is the kernel itself");
        Assert.Equal(File.ReadAllBytes(Cli.Guest("hello")), File.ReadAllBytes(kernel));
    }

    [Fact]
    public void ExportRefusesToWriteOverTheTraceItReads()
    {
        string trace = Cli.TempFile("hello.rvt");
        File.Copy(Hello.Value, trace);
        Cli.AssertOneLineError(Cli.Run("export", trace, "-o", trace), 2, "is the trace itself");
        Assert.Equal(File.ReadAllBytes(Hello.Value), File.ReadAllBytes(trace));
    }

    /// <summary>
    /// The input under another name that is no symbolic link to it: a path through a linked directory
    /// (`here/t.rvt`, `here -> .`) or a hard link. Before, only the full path and a link's target were
    /// compared: export wrote its JSON over the trace, record its trace over the kernel, and diff called
    /// the trace and itself "identical" (exit 0). Now the device and inode are compared too.
    /// </summary>
    [Fact]
    public void TheInputReachedThroughALinkedDirectoryOrAHardLinkIsStillTheInput()
    {
        string trace = Cli.TempFile("hello.rvt");
        File.Copy(Hello.Value, trace);
        string dir = Path.GetDirectoryName(trace)!;
        string here = Path.Combine(dir, "here");
        Directory.CreateSymbolicLink(here, ".");
        string hard = Path.Combine(dir, "hard.rvt");
        Assert.Equal(0, Cli.Shell($"ln '{trace}' '{hard}'").Code);
        foreach (string other in new[] { Path.Combine(here, "hello.rvt"), hard })
        {
            Cli.AssertOneLineError(Cli.Run("export", trace, "-o", other), 2, "is the trace itself");
            Assert.Equal(File.ReadAllBytes(Hello.Value), File.ReadAllBytes(trace));
            Cli.AssertOneLineError(Cli.Run("diff", trace, other), 22, "compared with itself");
        }
        string kernel = Path.Combine(dir, "hello.elf");
        File.Copy(Cli.Guest("hello"), kernel);
        string hardKernel = Path.Combine(dir, "hard.elf");
        Assert.Equal(0, Cli.Shell($"ln '{kernel}' '{hardKernel}'").Code);
        foreach (string other in new[] { Path.Combine(here, "hello.elf"), hardKernel })
        {
            Cli.AssertOneLineError(Cli.Run("record", kernel, "-o", other), 2, "is the kernel itself");
            Assert.Equal(File.ReadAllBytes(Cli.Guest("hello")), File.ReadAllBytes(kernel));
        }
    }

    /// <summary>
    /// `-o -` means standard output; a trace cannot be written there (it is read back by seeking), so
    /// `record` and `index` refuse it as misuse. Before, both wrote a file named "-".
    /// </summary>
    [Fact]
    public void ATraceCannotBeWrittenToStandardOutput()
    {
        string dir = Path.GetDirectoryName(Cli.TempFile("x"))!;
        var rec = Cli.Shell($"cd '{dir}' && dotnet '{Rv}' record '{Cli.Guest("hello")}' -o -");
        Cli.AssertOneLineError(rec, 2, "record -o -: cannot write to standard output");
        Assert.Equal("", rec.Stdout);
        var ix = Cli.Shell($"cd '{dir}' && dotnet '{Rv}' index '{Hello.Value}' -o -");
        Cli.AssertOneLineError(ix, 2, "index -o -: cannot write to standard output");
        Assert.False(File.Exists(Path.Combine(dir, "-")), "no file named '-'");
        Assert.Empty(Directory.GetFiles(dir));
    }

    /// <summary>--memory beyond what fits beside Xen's frames is misuse (exit 2) naming the real limit, not a bad kernel (exit 5).</summary>
    [Fact]
    public void MemoryBeyondWhatFitsIsMisuse()
    {
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--memory", "2046"), 2, "--memory 2046: must be between 4 and 2045 MiB");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", Cli.TempFile("m.rvt"), "--memory", "2047"), 2, "--memory 2047: must be between 4 and 2045 MiB");
    }

    /// <summary>
    /// A --cmdline longer than start_info's field (1023 bytes and the NUL) is misuse (exit 2) naming the option.
    /// Before, it was exit 5, "the kernel file is not a loadable Xen PV kernel", blaming the kernel's path. The
    /// longest that fits still runs.
    /// </summary>
    [Fact]
    public void ACommandLineLongerThanStartInfoHoldsIsMisuse()
    {
        Cli.AssertOneLineError(Cli.Run("run", Cli.Guest("hello"), "--cmdline", new string('a', 1024)), 2, "--cmdline: 1024 bytes: must be at most 1023");
        string trace = Cli.TempFile("c.rvt");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", trace, "--cmdline", new string('é', 512)), 2, "--cmdline: 1024 bytes: must be at most 1023");
        Assert.False(File.Exists(trace));
        var ok = Cli.Run("run", Cli.Guest("hello"), "--cmdline", new string('a', 1023));
        Assert.True(ok.Code == 0, ok.ToString());
    }

    /// <summary>index -o into a missing directory names the output asked for (not its temporary file) and why.</summary>
    [Fact]
    public void IndexIntoAMissingDirectoryNamesTheOutput()
    {
        string output = Path.Combine(Path.GetDirectoryName(Cli.TempFile("x"))!, "missing", "indexed.rvt");
        Cli.AssertOneLineError(Cli.Run("index", Hello.Value, "-o", output), 74, $"{output}: cannot write: its directory does not exist");
    }

    /// <summary>The Xen 4.19 profile refuses a non-PAE kernel: like any refused kernel, before the output path is touched.</summary>
    [Fact]
    public void AKernelTheXenProfileRefusesLeavesAnExistingFileUntouched()
    {
        string existing = Cli.TempFile("existing.rvt");
        File.WriteAllText(existing, "an earlier recording\n");
        Cli.AssertOneLineError(Cli.Run("record", Cli.Guest("hello"), "-o", existing, "--xen", "4.19"), 5, "cannot run on Xen 4.19");
        Assert.True(File.Exists(existing), "a refused kernel deleted the file at the output path");
        Assert.Equal("an earlier recording\n", File.ReadAllText(existing));
    }
}
