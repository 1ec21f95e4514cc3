using System.Buffers.Binary;
using System.Diagnostics;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Builds tests/native/diffrunner.c once per test run (gcc -m32 -static, freestanding, so no 32-bit
/// libc is needed) and runs batches of <see cref="DiffCase"/>s through it on the host CPU.
/// The wire format is documented at the top of diffrunner.c.
/// </summary>
public static class NativeRunner
{
    private const uint MagicCase = 0x53414344, MagicResult = 0x53455244;
    private static readonly Lazy<string> Binary = new(Build, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Path of the built runner; throws with a clear message when gcc is missing or fails.</summary>
    public static string BinaryPath => Binary.Value;

    private static string FindSource()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            string p = Path.Combine(dir.FullName, "tests", "native", "diffrunner.c");
            if (File.Exists(p)) return p;
        }
        throw new InvalidOperationException("differential tests: tests/native/diffrunner.c not found above " + AppContext.BaseDirectory);
    }

    private static string Build()
    {
        string src = FindSource();
        string dir = Path.Combine(Path.GetTempPath(), $"replayvisor-diffrunner-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string exe = Path.Combine(dir, "diffrunner");
        var psi = new ProcessStartInfo("gcc")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { "-m32", "-static", "-O1", "-nostdlib", "-ffreestanding", "-fno-pie", "-no-pie",
                     "-fno-stack-protector", "-fno-builtin", "-Wall", "-Werror", "-o", exe, src })
            psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new InvalidOperationException("gcc did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                "differential CPU tests need gcc (with -m32 support) to build tests/native/diffrunner.c; " +
                "install it (apt-get install gcc) — " + e.Message, e);
        }
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"differential CPU tests: gcc -m32 failed to build {src} (exit {p.ExitCode}):\n{err}");
        return exe;
    }

    /// <summary>Runs every case natively; results in the order of the cases.</summary>
    public static Outcome[] Run(IReadOnlyList<DiffCase> cases)
    {
        var psi = new ProcessStartInfo(BinaryPath)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("diffrunner did not start");
        // Feed stdin from another task so a full stdout pipe cannot deadlock us.
        var writer = Task.Run(() =>
        {
            using var stdin = new BufferedStream(p.StandardInput.BaseStream, 1 << 16);
            foreach (var c in cases) Write(stdin, c);
        });
        var stderr = p.StandardError.ReadToEndAsync();
        var results = new Outcome[cases.Count];
        using (var stdout = new BufferedStream(p.StandardOutput.BaseStream, 1 << 16))
        {
            for (int i = 0; i < cases.Count; i++)
            {
                var o = ReadResult(stdout, cases[i], out bool eof);
                if (eof)
                {
                    p.WaitForExit();
                    throw new InvalidOperationException($"diffrunner stopped after {i} of {cases.Count} cases (exit {p.ExitCode}): {stderr.Result}");
                }
                results[i] = o;
            }
        }
        writer.GetAwaiter().GetResult();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"diffrunner exited {p.ExitCode}: {stderr.Result}");
        return results;
    }

    private static void Write(Stream s, DiffCase c)
    {
        var b = new byte[4];
        void U32(uint v) { BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b, 0, 4); }
        void U16(int v) { BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)v); s.Write(b, 0, 2); }
        U32(MagicCase);
        U32((uint)c.Id);
        foreach (uint r in c.Regs) U32(r);
        U32(c.Eflags);
        U32(c.FillSeed);
        U32((uint)c.Guard);
        U16(c.Patches.Count);
        foreach (var (off, bytes) in c.Patches) { U16(off); U16(bytes.Length); s.Write(bytes); }
        U16(c.Code.Length);
        s.Write(c.Code);
    }

    private static Outcome ReadResult(Stream s, DiffCase c, out bool eof)
    {
        // magic id signal trapno err eip cr2, gpr[8] eflags, sreg[6], changed count
        var head = new byte[7 * 4 + 9 * 4 + 6 * 2 + 2];
        eof = !ReadExactly(s, head);
        if (eof) return new Outcome();
        uint U(int i) => BinaryPrimitives.ReadUInt32LittleEndian(head.AsSpan(i * 4));
        if (U(0) != MagicResult || U(1) != (uint)c.Id) throw new InvalidOperationException($"diffrunner: bad result header for case {c.Id}");
        var o = new Outcome { Signal = (int)U(2) };
        if (o.Signal != 0)
        {
            o.End = EndKind.Exception;
            o.Vector = (int)U(3);
            o.ErrorCode = U(4);
            o.Eip = U(5);
            o.Cr2 = U(6);
        }
        for (int r = 0; r < 8; r++) o.Regs[r] = U(7 + r);
        o.Eflags = U(15);
        for (int i = 0; i < 6; i++) o.Sregs[i] = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(64 + 2 * i));
        int changed = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(76));
        var list = new byte[changed * 3];
        if (!ReadExactly(s, list)) throw new InvalidOperationException("diffrunner: truncated result");
        o.Data = c.InitialData();
        for (int k = 0; k < changed; k++)
            o.Data[BinaryPrimitives.ReadUInt16LittleEndian(list.AsSpan(k * 3))] = list[k * 3 + 2];
        return o;
    }

    private static bool ReadExactly(Stream s, byte[] buf)
    {
        int got = 0;
        while (got < buf.Length)
        {
            int n = s.Read(buf, got, buf.Length - got);
            if (n == 0) return got == 0 && buf.Length > 0 ? false : throw new InvalidOperationException("diffrunner: truncated output");
            got += n;
        }
        return true;
    }
}
