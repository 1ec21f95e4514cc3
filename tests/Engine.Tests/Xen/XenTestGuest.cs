using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Tests.Boot;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Tests.Xen;

/// <summary>
/// Builds small ring-1 PV kernels from code assembled with Iced: code chunks at fixed addresses in
/// the first pages, an initialised data page, the hypercall page (filled by the builder), and
/// zeroed scratch pages. Runs them in a <see cref="XenMachine"/>.
/// </summary>
internal sealed class XenTestGuest
{
    public const uint VirtBase = 0xC0000000;
    public const uint Entry = 0xC0100000;       // main code (chunks at Entry + n*0x100)
    public const uint DataPage = 0xC0102000;    // initialised data (Data[])
    public const uint HcPage = 0xC0103000;
    public const uint Scratch = 0xC0104000;     // zeroed, 4 pages
    public const uint UserCode = 0xC0108000;    // a code page tests may make user-accessible
    public const uint UserStack = 0xC0109000;   // a zeroed page tests may make user-accessible
    public const uint SharedInfoVa = 0xC010A000; // MapSharedInfo maps shared_info here
    public const uint KernelStackTop = 0xC010C000; // top of a zeroed kernel stack page (0xC010B000..)
    public const int Pages = 13;

    private readonly SortedDictionary<uint, Action<Assembler>> _chunks = [];
    public byte[] Data { get; } = new byte[4096];

    public XenTestGuest Code(uint at, Action<Assembler> build) { _chunks[at] = build; return this; }
    public XenTestGuest Main(Action<Assembler> build) => Code(Entry, build);

    public static void Hcall(Assembler a, int nr) => a.call(HcPage + (ulong)nr * 32);

    /// <summary>sched_op_compat(shutdown, reason) via the hypercall page (uses no data segment).</summary>
    public static void Shutdown(Assembler a, uint reason = 0)
    {
        a.mov(AssemblerRegisters.ebx, 2);
        a.mov(AssemblerRegisters.ecx, reason);
        Hcall(a, 6);
    }

    public byte[] BuildImage(bool pae)
    {
        var text = new byte[3 * 4096];
        foreach (var (at, build) in _chunks)
        {
            byte[] code = Assemble(build, at);
            code.CopyTo(text, (int)(at - Entry));
        }
        Data.CopyTo(text, (int)(DataPage - Entry));
        var elf = new TestElf { Entry = Entry };
        elf.Loads.Add((0x100000, Entry, text, Pages * 4096));
        elf.Note(XenNoteType.GuestOs, "linux").Note(XenNoteType.GuestVersion, "2.6")
            .Note(XenNoteType.XenVersion, "xen-3.0").Note(XenNoteType.VirtBase, VirtBase)
            .Note(XenNoteType.Entry, Entry).Note(XenNoteType.HypercallPage, HcPage)
            .Note(XenNoteType.PaeMode, pae ? "yes" : "no").Note(XenNoteType.Loader, "generic");
        return elf.Build();
    }

    public XenMachine Machine(bool pae = true, XenMachineOptions? options = null) =>
        new(BuildImage(pae), options ?? new XenMachineOptions { MemoryMiB = 8 });

    public static byte[] Assemble(Action<Assembler> build, uint at)
    {
        var a = new Assembler(32);
        build(a);
        var w = new Writer();
        a.Assemble(w, at);
        return w.Bytes.ToArray();
    }

    private sealed class Writer : CodeWriter
    {
        public readonly List<byte> Bytes = [];
        public override void WriteByte(byte value) => Bytes.Add(value);
    }

    // ---- running ----

    /// <summary>Runs the machine for at most <paramref name="max"/> instructions.</summary>
    public static MachineExit Run(XenMachine m, ulong max = 2_000_000) => m.Run(max);

    // ---- inspecting and preparing guest memory ----

    public static uint Read32(XenMachine m, uint va)
    {
        Assert.True(m.Guest.TryRead32(va, out uint v), $"guest VA {va:x8} not readable");
        return v;
    }

    public static void Write(XenMachine m, uint va, ReadOnlySpan<byte> data) => Assert.True(m.Guest.TryWrite(va, data));
    public static void Write32(XenMachine m, uint va, uint v) => Assert.True(m.Guest.TryWrite32(va, v));

    /// <summary>Physical address of the L1 entry mapping <paramref name="va"/> in the current tables.</summary>
    public static ulong PteAddress(XenMachine m, uint va)
    {
        var cpu = m.Cpu;
        var mem = cpu.Memory;
        if (cpu.Pae)
        {
            ulong l3 = mem.Read64((cpu.Cr3 & 0xFFFFFFE0u) + ((va >> 30) << 3));
            ulong l2 = mem.Read64((l3 & 0xFFFFFF000ul) + (((va >> 21) & 0x1FF) << 3));
            return (l2 & 0xFFFFFF000ul) + (((va >> 12) & 0x1FF) << 3);
        }
        uint pde = mem.Read32((cpu.Cr3 & 0xFFFFF000u) + ((va >> 22) << 2));
        return (pde & 0xFFFFF000u) + (((va >> 12) & 0x3FF) << 2);
    }

    /// <summary>Sets the U bit on the page's L1 entry (test setup, bypassing the MMU model).</summary>
    public static void MakeUser(XenMachine m, uint va)
    {
        ulong pte = PteAddress(m, va);
        m.Cpu.Memory.Write32(pte, m.Cpu.Memory.Read32(pte) | 4);
        m.Cpu.FlushTlb();
    }

    /// <summary>Maps a machine frame RW at <paramref name="va"/> (test setup, bypassing the MMU model).</summary>
    public static void MapFrame(XenMachine m, uint va, uint mfn)
    {
        ulong pte = PteAddress(m, va);
        if (m.Cpu.Pae) m.Cpu.Memory.Write64(pte, ((ulong)mfn << 12) | 0x63);
        else m.Cpu.Memory.Write32(pte, (mfn << 12) | 0x63);
        m.Cpu.FlushTlb();
    }

    public static void MapSharedInfo(XenMachine m) => MapFrame(m, SharedInfoVa, m.Domain.SharedInfoMfn);

    /// <summary>trap_info entries written at <paramref name="at"/> in Data (offset from DataPage), terminated by a zero entry.</summary>
    public XenTestGuest TrapTable(int offset, params (byte Vector, byte Flags, ushort Cs, uint Address)[] traps)
    {
        int o = offset;
        foreach (var t in traps)
        {
            Data[o] = t.Vector; Data[o + 1] = t.Flags;
            BitConverter.TryWriteBytes(Data.AsSpan(o + 2), t.Cs);
            BitConverter.TryWriteBytes(Data.AsSpan(o + 4), t.Address);
            o += 8;
        }
        Array.Clear(Data, o, 8);
        return this;
    }

    /// <summary>set_trap_table(DataPage + offset).</summary>
    public static void SetTrapTable(Assembler a, int offset)
    {
        a.mov(AssemblerRegisters.ebx, DataPage + (uint)offset);
        Hcall(a, 0);
    }

    /// <summary>set_callbacks(kernel cs, ev, kernel cs, failsafe).</summary>
    public static void SetCallbacks(Assembler a, uint ev, uint fs)
    {
        a.mov(AssemblerRegisters.ebx, XenLayout.FlatKernelCs);
        a.mov(AssemblerRegisters.ecx, ev);
        a.mov(AssemblerRegisters.edx, XenLayout.FlatKernelCs);
        a.mov(AssemblerRegisters.esi, fs);
        Hcall(a, 4);
    }

    /// <summary>Copies (through SS: DS may be null after a ring change or failsafe) [esp + i*4] for i &lt; count to Scratch + slot*4 onward (uses eax), then shuts down.</summary>
    public static void DumpStackAndStop(Assembler a, int count, uint slot = 0, uint reason = 0)
    {
        for (int i = 0; i < count; i++)
        {
            a.mov(AssemblerRegisters.eax, AssemblerRegisters.__dword_ptr[AssemblerRegisters.esp + i * 4]);
            a.mov(AssemblerRegisters.__dword_ptr.ss[Scratch + (slot + (uint)i) * 4], AssemblerRegisters.eax);
        }
        a.mov(AssemblerRegisters.__dword_ptr.ss[Scratch + 0x100], AssemblerRegisters.esp);
        Shutdown(a, reason);
    }
}
