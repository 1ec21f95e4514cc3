using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Tests.Xen;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// Pieces shared by the hostile guests, built on <see cref="XenTestGuest"/>: a trap table sending
/// every vector to one of a few handlers, handlers that do random things, and pools of addresses
/// and selectors a hostile guest likes to use.
/// </summary>
internal static class HostileGuest
{
    /// <summary>Handlers live at Entry + 0x100 + k*0x60 (k &lt; HandlerCount); code to fuzz starts at CodeStart.</summary>
    public const int HandlerCount = 4;
    public static uint HandlerAt(int k) => Entry + 0x100 + (uint)k * 0x60;
    public const uint CodeStart = Entry + 0x300;
    public const uint CodeEnd = DataPage;                 // text pages before the data page
    /// <summary>Scratch + 0x3000: a jump table of 256 resume addresses (written by Prepare) the "resume" handler walks.</summary>
    public const uint ResumeTable = Scratch + 0x3000;
    public const uint Counter = Scratch + 0x3FFC;

    public static uint R32(Random r) => (uint)r.NextInt64(0, 1L << 32);

    /// <summary>Trap table at Data offset 0: every vector, flags random (DPL, event mask), CS mostly the flat kernel CS.</summary>
    public static void RandomTrapTable(XenTestGuest g, Random r)
    {
        var traps = new (byte, byte, ushort, uint)[256];
        for (int v = 0; v < 256; v++)
        {
            ushort cs = r.Next(20) == 0 ? (ushort)r.Next(0x10000) : XenLayout.FlatKernelCs;
            uint at = r.Next(30) == 0 ? R32(r) : HandlerAt(r.Next(HandlerCount));
            // Vector 0 ends the list in a trap_info table, so it goes last with a nonzero address.
            traps[v] = ((byte)((v + 1) & 0xFF), (byte)r.Next(8), cs, at);
        }
        traps[255] = (0, (byte)r.Next(8), XenLayout.FlatKernelCs, HandlerAt(0));
        g.TrapTable(0, traps);
    }

    /// <summary>The common start: trap table, callbacks to handlers, a kernel stack, then a jump to <paramref name="to"/>.</summary>
    public static void Start(Assembler a, Random r, uint to)
    {
        SetTrapTable(a, 0);
        SetCallbacks(a, HandlerAt(r.Next(HandlerCount)), HandlerAt(r.Next(HandlerCount)));
        a.mov(ebx, XenLayout.FlatKernelSs);
        a.mov(ecx, KernelStackTop);
        Hcall(a, 3);
        a.mov(esp, KernelStackTop - 0x200);
        if (r.Next(2) == 0) a.sti(); // events unmasked: timer upcalls arrive in the middle of the mess
        a.jmp(to);
    }

    /// <summary>One handler body at <paramref name="at"/>.</summary>
    public static void Handler(XenTestGuest g, Random r, uint at, bool userResume)
    {
        int kind = r.Next(10);
        byte[] noise = new byte[0x50];
        r.NextBytes(noise);
        uint target = R32(r);
        uint bump = (uint)r.Next(1, 8);
        g.Code(at, a =>
        {
            switch (kind)
            {
                case 0: a.db(noise); break;                               // random bytes
                case 1: a.jmp(HcPage + 23 * 32); break;                   // iret hypercall on whatever frame is there
                case 2: a.add(__dword_ptr[esp], bump); a.iretd(); break;  // real iret, skipping some bytes
                case 3: a.mov(eax, target); a.jmp(eax); break;            // anywhere
                case 4: a.add(__dword_ptr[esp], bump); a.jmp(HcPage + 23 * 32); break;
                default: Resume(a, userResume); break;                    // next entry of the resume table
            }
        });
    }

    /// <summary>Resets the stack and continues at ResumeTable[counter++ &amp; 255] (in ring 3 via the iret hypercall when <paramref name="user"/>).</summary>
    public static void Resume(Assembler a, bool user)
    {
        a.mov(esp, KernelStackTop - 0x100);
        a.inc(__dword_ptr.ss[Counter]);
        a.mov(eax, __dword_ptr.ss[Counter]);
        a.and(eax, 255);
        a.mov(eax, __dword_ptr.ss[eax * 4 + ResumeTable]);
        if (!user) { a.jmp(eax); return; }
        a.push(XenLayout.FlatUserSs);
        a.push(UserStack + 0x800);
        a.push(0x202);
        a.push(XenLayout.FlatUserCs);
        a.push(eax);
        a.jmp(HcPage + 23 * 32);
    }

    /// <summary>Writes the 256 resume addresses (picked from <paramref name="starts"/>) into the machine.</summary>
    public static void WriteResumeTable(XenMachine m, IReadOnlyList<uint> starts, int seed)
    {
        var r = new Random(seed);
        var table = new byte[1024];
        for (int i = 0; i < 256; i++)
            BitConverter.TryWriteBytes(table.AsSpan(i * 4), starts.Count == 0 ? CodeStart : starts[r.Next(starts.Count)]);
        Write(m, ResumeTable, table);
    }

    /// <summary>Addresses worth touching: own code and data, page tables, start_info, the hypercall page, holes, garbage.</summary>
    public static uint Address(Random r, BuiltDomain d)
    {
        var v = d.Virtual;
        return r.Next(12) switch
        {
            0 => CodeStart + (uint)r.Next(0x1D00),
            1 => Scratch + (uint)r.Next(0x3000),
            2 => v.PageTables + (uint)r.Next((int)v.NrPtFrames * 4096),
            3 => v.StartInfo + (uint)r.Next(4096),
            4 => HcPage + (uint)r.Next(4096),
            5 => d.Layout.HypervisorVirtStart + (uint)r.Next(0x100000),
            6 => 0xFFFFF000 + (uint)r.Next(4096),
            7 => (uint)r.Next(0x10000),
            8 => UserStack + (uint)r.Next(4096),
            9 => SharedInfoVa + (uint)r.Next(4096),
            10 => v.P2mStart + (uint)r.Next(4096),
            _ => R32(r),
        };
    }

    /// <summary>Selectors worth loading: flat ones, Xen's own, null, LDT, garbage.</summary>
    public static ushort Selector(Random r) => r.Next(8) switch
    {
        0 => XenLayout.FlatKernelCs,
        1 => XenLayout.FlatKernelDs,
        2 => XenLayout.FlatUserCs,
        3 => XenLayout.FlatUserDs,
        4 => XenLayout.HypervisorCs,
        5 => (ushort)r.Next(4),
        6 => (ushort)(r.Next(0x2000) << 3 | r.Next(8)),
        _ => (ushort)r.Next(0x10000),
    };
}
