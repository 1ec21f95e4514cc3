using Iced.Intel;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.Tests.Xen;
using Xunit.Abstractions;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Hostile.HostileGuest;
using static Replayvisor.Engine.Tests.Xen.XenTestGuest;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// A guest that walks a table of hypercall records (number + five arguments) and issues each through
/// the hypercall page. The table (written before the first instruction) mixes random numbers and
/// arguments with semi-valid requests built from the domain's real frames: mmu_update / mmuext_op
/// on page-table mfns, set_gdt frame lists, update_descriptor, update_va_mapping, multicall batches
/// (nested, with iret entries), event-channel, sched, vcpu and timer operations. Every trap and
/// callback goes back to the loop, which takes the next record.
/// </summary>
public class RandomHypercallTests(ITestOutputHelper output)
{
    private const uint Records = Scratch;                 // 24-byte records up to Scratch + 0x2000
    private const int RecordCount = 0x2000 / 24 - 1;
    private const uint Structs = Scratch + 0x2000;        // arrays the records point into
    private const uint MmuA = Structs, MmuB = Structs + 0x200, Ext = Structs + 0x400, Frames = Structs + 0x580;
    private const uint Batches = Structs + 0x600, Blob = Structs + 0xA00, Out = Structs + 0xC00;
    private const uint DomidSelf = 0x7FF0;

    private static void Loop(Assembler a)
    {
        var next = a.CreateLabel();
        var done = a.CreateLabel();
        a.Label(ref next);
        a.mov(esp, KernelStackTop - 0x100);
        a.mov(ebp, __dword_ptr.ss[Counter]);
        a.inc(__dword_ptr.ss[Counter]);
        a.imul(ebp, ebp, 24);
        a.add(ebp, Records);
        a.mov(eax, __dword_ptr.ss[ebp]);
        a.cmp(eax, -1);
        a.je(done);
        a.mov(ebx, __dword_ptr.ss[ebp + 4]);
        a.mov(ecx, __dword_ptr.ss[ebp + 8]);
        a.mov(edx, __dword_ptr.ss[ebp + 12]);
        a.mov(esi, __dword_ptr.ss[ebp + 16]);
        a.mov(edi, __dword_ptr.ss[ebp + 20]);
        a.and(eax, 127);
        a.shl(eax, 5);
        a.add(eax, HcPage);
        a.call(eax);
        a.jmp(next);
        a.Label(ref done);
        Shutdown(a);
    }

    internal static HostileCase Case(int seed, bool pae)
    {
        var r = new Random(seed);
        var g = new XenTestGuest();
        RandomTrapTable(g, r);
        for (int k = 0; k < HandlerCount; k++) g.Code(HandlerAt(k), a => a.jmp(CodeStart));
        g.Main(a => Start(a, r, CodeStart));
        g.Code(CodeStart, Loop);
        var image = g.BuildImage(pae);
        return new HostileCase($"random-hypercalls seed {seed} pae {pae}", image, m => Fill(m, new Random(seed)), 400_000, pae);
    }

    private static void Fill(XenMachine m, Random r)
    {
        var d = m.Domain;
        var mem = new byte[0x3000];
        bool pae = d.IsPae;
        void Put(uint va, uint v) => BitConverter.TryWriteBytes(mem.AsSpan((int)(va - Scratch)), v);

        uint GuestMfn() => d.P2m[r.Next(d.P2m.Count)];
        uint PtMfn() => d.PageTables[r.Next(d.PageTables.Count)].Mfn;
        uint Mfn() => r.Next(6) switch
        {
            0 or 1 => PtMfn(),
            2 => GuestMfn(),
            3 => d.P2m[(int)((Scratch - VirtBase) >> 12) + r.Next(4)],
            4 => r.Next(2) == 0 ? d.SharedInfoMfn : d.M2PFirstMfn + (uint)r.Next(4),
            _ => r.Next(3) == 0 ? R32(r) : (uint)r.Next(0x4000),
        };
        uint Pointer() => r.Next(8) switch
        {
            0 or 1 => Structs + (uint)r.Next(0x1000),
            2 => Blob + (uint)r.Next(0x200) & ~3u,
            3 => Out + (uint)r.Next(0x3F0) & ~3u,
            4 => d.Virtual.PageTables + (uint)r.Next((int)d.Virtual.NrPtFrames * 4096),
            5 => Scratch + 0x4000 - (uint)r.Next(16),
            _ => Address(r, d),
        };
        uint Count() => r.Next(8) switch { 0 => 0, 1 => R32(r), 2 => 0x80000000u | (uint)r.Next(64), 3 => (uint)r.Next(2000), _ => (uint)r.Next(1, 33) };
        uint Small(int n) => r.Next(10) == 0 ? R32(r) : (uint)r.Next(n);
        uint Pte() => (Mfn() << 12) | (uint)(r.Next(3) == 0 ? r.Next(0x1000) : 0x63 | r.Next(2) * 4 & ~(r.Next(2) * 2));
        uint Any() => r.Next(3) switch { 0 => Pointer(), 1 => Small(64), _ => R32(r) };

        // mmu_update arrays: A random, B page-table-entry shaped.
        for (int i = 0; i < 32; i++)
        {
            uint pa = (Mfn() << 12) + (uint)r.Next(4096) & ~7u;
            Put(MmuA + (uint)i * 16, r.Next(2) == 0 ? R32(r) : pa | (uint)r.Next(4));
            Put(MmuA + (uint)i * 16 + 4, r.Next(4) == 0 ? R32(r) : 0);
            Put(MmuA + (uint)i * 16 + 8, R32(r));
            Put(MmuA + (uint)i * 16 + 12, r.Next(4) == 0 ? R32(r) : 0);
            uint ptPa = (PtMfn() << 12) + (uint)r.Next(pae ? 512 : 1024) * (pae ? 8u : 4u);
            bool machphys = r.Next(6) == 0;
            Put(MmuB + (uint)i * 16, machphys ? (GuestMfn() << 12) | 1 : ptPa | (uint)(r.Next(4) == 0 ? 2 : 0));
            Put(MmuB + (uint)i * 16 + 4, 0);
            Put(MmuB + (uint)i * 16 + 8, machphys ? (uint)r.Next(4096) : r.Next(5) == 0 ? 0 : Pte());
            Put(MmuB + (uint)i * 16 + 12, 0);
        }
        // mmuext_op array.
        for (int i = 0; i < 32; i++)
        {
            Put(Ext + (uint)i * 12, Small(17));
            Put(Ext + (uint)i * 12 + 4, r.Next(3) == 0 ? Address(r, d) : Mfn());
            Put(Ext + (uint)i * 12 + 8, r.Next(2) == 0 ? (uint)r.Next(16) : Pointer());
        }
        for (int i = 0; i < 16; i++) Put(Frames + (uint)i * 4, Mfn());
        // Multicall batches: 4 of 8 entries; entries may nest into another batch or be an iret.
        int[] ops = [1, 2, 3, 4, 5, 8, 10, 12, 13, 14, 15, 17, 18, 21, 23, 24, 26, 29, 32, r.Next(70)];
        for (int b = 0; b < 4; b++)
            for (int e = 0; e < 8; e++)
            {
                uint at = Batches + (uint)(b * 8 + e) * 32;
                int op = ops[r.Next(ops.Length)];
                if (op == 23 && r.Next(4) != 0) op = 17; // iret entries crash the domain when the frame is bad: keep them rare
                Put(at, op == 29 && r.Next(4) != 0 ? 24 : (uint)op);
                Put(at + 4, R32(r));
                if (op == 13) { Put(at + 8, Batches + (uint)r.Next(4) * 256 + (uint)r.Next(8) * 32); Put(at + 12, (uint)r.Next(1, 9)); }
                else if (op == 1) { Put(at + 8, MmuB + (uint)r.Next(32) * 16); Put(at + 12, (uint)r.Next(1, 4)); Put(at + 16, r.Next(2) == 0 ? 0 : Out); Put(at + 20, DomidSelf); }
                else if (op == 14) { Put(at + 8, Address(r, d)); Put(at + 12, Pte()); Put(at + 16, 0); Put(at + 20, Small(4)); }
                else for (int k = 0; k < 6; k++) Put(at + 8 + (uint)k * 4, Any());
            }
        for (uint o = 0; o < 0x200; o += 4) Put(Blob + o, r.Next(3) == 0 ? R32(r) : Small(r.Next(2) == 0 ? 8 : 1100));

        for (int i = 0; i < RecordCount; i++)
        {
            uint[] a = new uint[6];
            int nr = r.Next(24) switch
            {
                0 => 1, 1 => 1, 2 => 26, 3 => 26, 4 => 2, 5 => 10, 6 => 14, 7 => 13, 8 => 13, 9 => 32, 10 => 32, 11 => 29,
                12 => 24, 13 => 15, 14 => 12, 15 => 20, 16 => 3, 17 => 18, 18 => 17, 19 => 21, 20 => 22, _ => r.Next(71),
            };
            a[0] = (uint)nr;
            for (int k = 1; k < 6; k++) a[k] = Any();
            switch (nr)
            {
                case 1: a[1] = r.Next(2) == 0 ? MmuB + (uint)r.Next(32) * 16 : MmuA + (uint)r.Next(32) * 16; a[2] = r.Next(3) == 0 ? Count() : (uint)r.Next(1, 6); a[3] = r.Next(2) == 0 ? 0 : Pointer(); a[4] = r.Next(5) == 0 ? Small(0x8000) : DomidSelf; break;
                case 26: a[1] = Ext + (uint)r.Next(32) * 12; a[2] = r.Next(3) == 0 ? Count() : (uint)r.Next(1, 4); a[3] = r.Next(2) == 0 ? 0 : Pointer(); a[4] = r.Next(5) == 0 ? Small(0x8000) : DomidSelf; break;
                case 2: a[1] = r.Next(4) == 0 ? Pointer() : Frames + (uint)r.Next(16) * 4; a[2] = r.Next(3) == 0 ? Count() : (uint)r.Next(0, 2048); break;
                case 10:
                    {
                        ulong ma = ((ulong)Mfn() << 12) + (ulong)(r.Next(512) * 8);
                        if (r.Next(4) == 0) ma |= (uint)r.Next(8);
                        a[1] = (uint)ma; a[2] = (uint)(ma >> 32);
                        uint lo = r.Next(2) == 0 ? R32(r) : 0x0000FFFF, hi = r.Next(2) == 0 ? R32(r) : 0x00CF9000u | (uint)r.Next(4) << 13 | (uint)r.Next(16) << 8;
                        a[3] = lo; a[4] = hi; break;
                    }
                case 14: case 22: a[1] = Address(r, d); a[2] = Pte(); a[3] = 0; a[4] = Small(4) | (r.Next(3) == 0 ? Pointer() & ~3u : 0); a[5] = r.Next(3) == 0 ? Small(0x8000) : DomidSelf; break;
                case 13: a[1] = r.Next(5) == 0 ? Pointer() : Batches + (uint)r.Next(32) * 32; a[2] = r.Next(4) == 0 ? Count() : (uint)r.Next(1, 9); break;
                case 32: case 12: case 17: case 24: a[1] = Small(nr == 24 ? 14 : 24); a[2] = r.Next(2) == 0 ? Blob + (uint)r.Next(0x1F0) & ~3u : Pointer(); if (nr == 24) { a[2] = Small(3); a[3] = Pointer(); } break;
                case 29: a[1] = r.Next(40) == 0 ? 2u : Small(6) is var c && c is 1 or 2 && r.Next(4) != 0 ? 0u : c; a[2] = r.Next(2) == 0 ? Blob + (uint)r.Next(0x1F0) : Pointer(); break;
                case 6: a[1] = r.Next(30) == 0 ? 2u : 0u; break;
                case 15: a[1] = R32(r); a[2] = r.Next(3) == 0 ? 0 : (uint)r.Next(4); break;
                case 20: a[1] = Small(12); a[2] = Pointer(); a[3] = Count(); break;
                case 3: a[1] = Selector(r); a[2] = r.Next(2) == 0 ? KernelStackTop - (uint)r.Next(0x800) : Address(r, d); break;
                case 18: a[1] = Small(3); a[2] = Count(); a[3] = Pointer(); break;
                case 21: a[1] = Small(3); a[2] = Small(8); break;
                case 23: if (r.Next(4) != 0) a[0] = 17; break; // a top-level iret on a loop stack mostly crashes: keep it rare
            }
            for (int k = 0; k < 6; k++) Put(Records + (uint)(i * 24 + k * 4), a[k]);
        }
        Put(Records + (uint)RecordCount * 24, 0xFFFFFFFF);
        Write(m, Scratch, mem);
    }

    [Fact]
    public void RandomHypercallsFromAGuestEndNormallyAndReproducibly()
    {
        long total = 0;
        int n = HostileRun.Iterations(14);
        for (int i = 0; i < n; i++)
        {
            var o = HostileRun.Check(Case(5000 + i, pae: i % 3 != 2), alsoWithoutBlockCache: i % 7 == 0);
            total += o.Hypercalls;
            output.WriteLine($"{i}: {o.Exit} hypercalls {o.Hypercalls}");
        }
        output.WriteLine($"total hypercalls (one run of each case): {total}");
    }
}
