using System.Text;
using Iced.Intel;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// A protected-mode machine with a GDT, IDT and 32-bit TSS in memory (test helper). Flat code and data
/// segments for rings 0, 1 and 3; the TSS holds ring-0 and ring-1 stacks. GDT indices 10-31 are free for tests.
/// Either a <see cref="RecordingHost"/> (stops at the first event) or a <see cref="NativeIdtHost"/> delivers events.
/// </summary>
public sealed class ProtectedModeMachine
{
    public const uint GdtBase = 0x10000, IdtBase = 0x11000, TssBase = 0x12000, LdtBase = 0x13000;
    public const uint GdtLimit = 32 * 8 - 1;
    public const ushort Code0 = 0x08, Data0 = 0x10, Code1 = 0x19, Data1 = 0x21, Code3 = 0x2B, Data3 = 0x33, TssSel = 0x38, LdtSel = 0x40;
    public const uint Stack0 = 0x70000, Stack1 = 0x60000, Stack3 = 0x50000;
    public const uint CodeBase = 0x1000;

    public PhysicalMemory Memory { get; }
    public X86Cpu Cpu { get; }
    public RecordingHost? Rec { get; }
    public NativeIdtHost? Native { get; }

    public ProtectedModeMachine(CpuTier blockCache, bool native = false, uint frames = 1024)
    {
        Memory = new PhysicalMemory(frames);
        ICpuHost host;
        if (native) host = Native = new NativeIdtHost();
        else host = Rec = new RecordingHost();
        Cpu = new X86Cpu(Memory, host) { Tier = blockCache, CompileThreshold = 0 };
        SetGdt(1, Seg(0, 0xFFFFF, 0x9B));
        SetGdt(2, Seg(0, 0xFFFFF, 0x93));
        SetGdt(3, Seg(0, 0xFFFFF, 0xBB));
        SetGdt(4, Seg(0, 0xFFFFF, 0xB3));
        SetGdt(5, Seg(0, 0xFFFFF, 0xFB));
        SetGdt(6, Seg(0, 0xFFFFF, 0xF3));
        SetGdt(7, Seg(TssBase, 0x67, 0x89, g: false, big: false)); // 32-bit TSS, available
        SetGdt(8, Seg(LdtBase, 8 * 8 - 1, 0x82, g: false, big: false));
        Memory.Write32(TssBase + 4, Stack0);
        Memory.Write32(TssBase + 8, Data0);
        Memory.Write32(TssBase + 0xC, Stack1);
        Memory.Write32(TssBase + 0x10, Data1);
        Cpu.GdtrBase = GdtBase; Cpu.GdtrLimit = GdtLimit;
        Cpu.IdtrBase = IdtBase; Cpu.IdtrLimit = 256 * 8 - 1;
        Cpu.Tr = SegmentCache.FromDescriptor(TssSel, Seg(TssBase, 0x67, 0x8B, g: false, big: false));
        Memory.Write8(GdtBase + 7 * 8 + 5, 0x8B);
        Enter(0);
        Cpu.Eip = CodeBase;
    }

    /// <summary>Builds a code/data/system descriptor; limit is the raw 20-bit field.</summary>
    public static ulong Seg(uint bas, uint limit, int access, bool g = true, bool big = true)
    {
        ulong lo = (limit & 0xFFFF) | ((bas & 0xFFFF) << 16);
        ulong hi = ((bas >> 16) & 0xFF) | ((uint)access << 8) | (limit & 0xF0000) | (g ? 0x800000u : 0) | (big ? 0x400000u : 0) | (bas & 0xFF000000u);
        return lo | (hi << 32);
    }

    /// <summary>Builds a call/interrupt/trap/task gate; access is the full access byte (e.g. 0x8E, 0xEF, 0xEC).</summary>
    public static ulong Gate(ushort sel, uint off, int access, int paramCount = 0)
    {
        ulong lo = (off & 0xFFFF) | ((ulong)sel << 16);
        ulong hi = (uint)(paramCount & 0x1F) | ((uint)access << 8) | (off & 0xFFFF0000u);
        return lo | (hi << 32);
    }

    public void SetGdt(int index, ulong d) => Memory.Write64(GdtBase + (uint)index * 8, d);
    public ulong GetGdt(int index) => Memory.Read64(GdtBase + (uint)index * 8);
    public void SetLdt(int index, ulong d) => Memory.Write64(LdtBase + (uint)index * 8, d);
    public void SetIdt(int vector, ushort sel, uint off, int access) => Memory.Write64(IdtBase + (uint)vector * 8, Gate(sel, off, access));

    /// <summary>Loads CS, SS, DS, ES, FS, GS with the flat selectors of a ring and sets CPL and ESP.</summary>
    public void Enter(int ring)
    {
        ushort cs = ring switch { 0 => Code0, 1 => Code1, _ => Code3 };
        ushort ds = ring switch { 0 => Data0, 1 => Data1, _ => Data3 };
        for (int s = 0; s < Replayvisor.Engine.Cpu.Seg.Count; s++)
        {
            ushort sel = s == Replayvisor.Engine.Cpu.Seg.CS ? cs : ds;
            Cpu.Segs[s] = SegmentCache.FromDescriptor(sel, GetGdt(sel >> 3));
        }
        Cpu.Cpl = ring;
        Cpu.Esp = ring switch { 0 => Stack0, 1 => Stack1, _ => Stack3 };
    }

    /// <summary>Assembles code at an address and writes it to memory; returns the end address.</summary>
    public uint Code(uint at, Action<Assembler> build)
    {
        byte[] bytes = TestMachine.Assemble(build, at);
        Memory.WriteBytes(at, bytes);
        return at + (uint)bytes.Length;
    }

    /// <summary>Assembles code at <see cref="CodeBase"/>.</summary>
    public ProtectedModeMachine Load(Action<Assembler> build)
    {
        Code(CodeBase, build);
        return this;
    }

    public StopReason Run(ulong max = 100_000) => Cpu.Run(Cpu.Icount + max);

    /// <summary>The single recorded event (RecordingHost mode).</summary>
    public CpuEvent Event => Assert.Single(Rec!.Events);

    /// <summary>Everything architectural that two execution modes must agree on.</summary>
    public string Snapshot()
    {
        var c = Cpu;
        var sb = new StringBuilder();
        for (int i = 0; i < 8; i++) sb.Append($"{Reg.Names[i]}={c.Gpr[i]:x8} ");
        sb.Append($"eip={c.Eip:x8} efl={c.Eflags:x8} cpl={c.Cpl} icount={c.Icount} cr0={c.Cr0:x8} cr2={c.Cr2:x8} cr3={c.Cr3:x8} cr4={c.Cr4:x8}\n");
        for (int s = 0; s < Replayvisor.Engine.Cpu.Seg.Count; s++)
        {
            var sc = c.Segs[s];
            sb.Append($"{Replayvisor.Engine.Cpu.Seg.Names[s]}={sc.Selector:x4}/{sc.Base:x8}/{sc.Limit:x8}/{sc.Attr:x4}/{sc.Usable} ");
        }
        if (Rec != null) foreach (var e in Rec.Events) sb.Append('\n').Append(e.ToString());
        if (Native != null) sb.Append($"\ndelivered={Native.Delivered} triple={Native.TripleFault} halts={Native.Halts}");
        return sb.ToString();
    }
}
