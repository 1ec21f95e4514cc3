using System.Diagnostics;
using System.Globalization;
using System.Text;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Tests.Cpu;
using Xunit.Abstractions;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// Data breakpoints against the host processor: tests/native/dbtracer.c sets DR0-DR3/DR7 in a
/// traced child (PTRACE_POKEUSER; user mode cannot write DR7 itself) and runs each snippet there;
/// the emulator runs the same bytes on every tier. They must agree on whether and where #DB was
/// raised, DR6 B0-B3, and ECX/ESI/EDI (the rep iteration the trap followed), for 1, 2, 4 and 8-byte
/// breakpoints on reads and writes of 1, 2 and 4 bytes, aligned or not. Snippets use encodings
/// that mean the same in the child's 64-bit code, at addresses below 4 GiB.
/// </summary>
public class DataBreakpointDiffTests(ITestOutputHelper output)
{
    private const uint Code = 0x40000, Data = 0x80000;

    private sealed record Case(uint[] Dr, uint Dr7, uint Ebx, uint Ecx, uint Esi, uint Edi, byte Fill, byte[] Bytes, string Name);
    private sealed record Result(int Stop, uint Dr6, uint Eip, uint Ecx, uint Esi, uint Edi);

    /// <summary>Name, bytes, and how the registers point at the data (mov forms use EBX).</summary>
    private static readonly (string Name, byte[] Bytes, bool Rep)[] Snippets =
    [
        ("mov al,[ebx]", [0x8A, 0x03], false), ("mov ax,[ebx]", [0x66, 0x8B, 0x03], false), ("mov eax,[ebx]", [0x8B, 0x03], false),
        ("mov [ebx],al", [0x88, 0x03], false), ("mov [ebx],ax", [0x66, 0x89, 0x03], false), ("mov [ebx],eax", [0x89, 0x03], false),
        ("inc dword [ebx]", [0xFF, 0x03], false), ("xchg [ebx],eax", [0x87, 0x03], false), ("add eax,[ebx]", [0x03, 0x03], false),
        ("movzx eax,word [ebx]", [0x0F, 0xB7, 0x03], false), ("mov [ebx],eax; mov eax,[ebx+4]", [0x89, 0x03, 0x8B, 0x43, 0x04], false),
        ("rep movsb", [0xF3, 0xA4], true), ("rep movsd", [0xF3, 0xA5], true), ("rep stosb", [0xF3, 0xAA], true), ("rep stosd", [0xF3, 0xAB], true),
        ("rep lodsb", [0xF3, 0xAC], true),
    ];

    private static List<Case> Cases(int count)
    {
        var rnd = new Random(2026);
        var list = new List<Case>();
        for (int n = 0; n < count; n++)
        {
            var (name, code, rep) = Snippets[n % Snippets.Length];
            var dr = new uint[4];
            uint dr7 = 0;
            int used = 1 + rnd.Next(3);
            for (int k = 0; k < used; k++)
            {
                int i = rnd.Next(4);
                if ((dr7 & (3u << (i * 2))) != 0) continue;          // one setting per register
                uint rw = rnd.Next(2) == 0 ? 1u : 3u;
                uint len = (uint)rnd.Next(4);                       // 00 1, 01 2, 10 8, 11 4 bytes
                uint bytes = len switch { 0 => 1u, 1 => 2u, 2 => 8u, _ => 4u };
                // Linux's ptrace refuses an address not aligned to the length (the SDM's alignment
                // rule itself is covered by Cpu/DataBreakpointTests' example table).
                dr[i] = (Data + 0x200 + (uint)rnd.Next(24)) & ~(bytes - 1);
                dr7 |= (1u << (i * 2 + rnd.Next(2))) | (rw << (16 + i * 4)) | (len << (18 + i * 4));
            }
            uint at = Data + 0x200 - 8 + (uint)rnd.Next(36);
            uint ecx = rep ? 1 + (uint)rnd.Next(40) : 0;
            // rep: ESI reads the watched area (movs, lods), EDI writes it (movs, stos); the other side is far away.
            uint esi = rep ? (name is "rep lodsb" || rnd.Next(2) == 0 ? at - 16 : Data + 0x1000) : 0;
            uint edi = rep ? (esi == at - 16 ? Data + 0x1000 : at - 16) : 0;
            list.Add(new Case(dr, dr7, at, ecx, esi, edi, (byte)rnd.Next(256), code, name));
        }
        return list;
    }

    private static Result OnEmulator(Case c, CpuTier tier)
    {
        var m = new TestMachine(blockCache: tier);
        for (uint a = Data; a < Data + 0x2000; a++) m.Memory.Write8(a, c.Fill);
        m.Memory.WriteBytes(Code, [.. c.Bytes, 0xF4]);
        var cpu = m.Cpu;
        cpu.Eip = Code; cpu.Eax = 0x11223344; cpu.Ebx = c.Ebx; cpu.Ecx = c.Ecx; cpu.Esi = c.Esi; cpu.Edi = c.Edi;
        for (int i = 0; i < 4; i++) cpu.Dr[i] = c.Dr[i];
        cpu.Dr[6] = 0; cpu.Dr[7] = c.Dr7;
        m.Run();
        int stop = m.Host.Events.Count == 1 && m.Host.Events[0].Vector == Vectors.DB ? 1 : m.Host.Halts == 1 && m.Host.Events.Count == 0 ? 0 : 2;
        return new Result(stop, cpu.Dr[6] & 0xF, cpu.Eip - Code, cpu.Ecx, cpu.Esi, cpu.Edi);
    }

    private static Result[] OnHost(List<Case> cases)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"replayvisor-dbtracer-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        string exe = Path.Combine(dir, "dbtracer");
        string src = Path.Combine(RepoRoot(), "tests", "native", "dbtracer.c");
        Exec("gcc", ["-O1", "-Wall", "-Werror", "-o", exe, src], null);
        var input = new StringBuilder();
        foreach (var c in cases)
            input.Append(CultureInfo.InvariantCulture, $"{c.Dr[0]:x} {c.Dr[1]:x} {c.Dr[2]:x} {c.Dr[3]:x} {c.Dr7:x} {c.Ebx:x} {c.Ecx:x} {c.Esi:x} {c.Edi:x} {c.Fill:x} {Convert.ToHexString(c.Bytes)}\n");
        string outText = Exec(exe, [], input.ToString());
        return outText.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l =>
        {
            var f = l.Split(' ').Select(x => uint.Parse(x, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            return new Result((int)f[0], f[1], f[2], f[3], f[4], f[5]);
        }).ToArray();
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Replayvisor.sln"))) return d.FullName;
        throw new InvalidOperationException("no Replayvisor.sln above " + AppContext.BaseDirectory);
    }

    private static string Exec(string file, string[] args, string? stdin)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin != null };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"{file} did not start");
        var writer = stdin == null ? Task.CompletedTask : Task.Run(() => { p.StandardInput.Write(stdin); p.StandardInput.Close(); });
        var err = p.StandardError.ReadToEndAsync();
        string text = p.StandardOutput.ReadToEnd();
        writer.Wait();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed ({p.ExitCode}): {err.Result}");
        return text;
    }

    [Fact]
    public void TheEmulatorAgreesWithTheHostOnEveryCase()
    {
        var cases = Cases(800);
        var host = OnHost(cases);
        Assert.Equal(cases.Count, host.Length);
        var failures = new List<string>();
        int traps = 0;
        foreach (var tier in Enum.GetValues<CpuTier>())
            for (int i = 0; i < cases.Count; i++)
            {
                var emu = OnEmulator(cases[i], tier);
                if (tier == CpuTier.Interpreter && host[i].Stop == 1) traps++;
                if (emu != host[i] && failures.Count < 20)
                {
                    var c = cases[i];
                    failures.Add($"{tier} #{i} {c.Name} at 0x{c.Ebx:x} ecx {c.Ecx} esi 0x{c.Esi:x} edi 0x{c.Edi:x} DR0-3 {string.Join(",", c.Dr.Select(d => d.ToString("x", CultureInfo.InvariantCulture)))} DR7 0x{c.Dr7:x}: host {host[i]}, emulator {emu}");
                }
            }
        output.WriteLine($"data breakpoints: {cases.Count} cases on {Enum.GetValues<CpuTier>().Length} tiers, {traps} trapped on the host");
        Assert.True(host.All(h => h.Stop != 2), "the host stopped unexpectedly: " + string.Join(", ", host.Where(h => h.Stop == 2).Take(3)));
        Assert.True(traps > cases.Count / 4, $"only {traps} cases trapped: the generator misses the breakpoints");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }
}
