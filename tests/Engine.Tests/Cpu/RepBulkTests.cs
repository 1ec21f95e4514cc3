using Replayvisor.Engine.Cpu;
using static Iced.Intel.AssemblerRegisters;
using static Replayvisor.Engine.Tests.Cpu.CpuTest;

namespace Replayvisor.Engine.Tests.Cpu;

/// <summary>
/// Long rep movs/stos runs (the bulk path copies or fills whole page runs at once) must match
/// the one-iteration-at-a-time definition exactly: results, registers, counts and stop points.
/// </summary>
public class RepBulkTests
{
    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void OverlappingForwardMovsReplicatesPattern(CpuTier bc)
    {
        // dst = src + 1 (movsb) and dst = src + 2 (movsd, overlapping inside one element).
        var m = new TestMachine(blockCache: bc).Load(a =>
        {
            a.mov(esi, 0x2000); a.mov(edi, 0x2001); a.mov(ecx, 3000); a.rep.movsb();
            a.mov(esi, 0x6000); a.mov(edi, 0x6002); a.mov(ecx, 1000); a.rep.movsd();
        });
        m.Memory.Write8(0x2000, 0xAB);
        m.Memory.Write32(0x6000, 0x44332211);
        m.Run();
        Halted(m);
        for (uint i = 0; i <= 3000; i++) Assert.Equal(0xAB, m.Memory.Read8(0x2000 + i));
        // Reference: element-by-element forward copy.
        var r = new byte[4010];
        BitConverter.GetBytes(0x44332211u).CopyTo(r, 0);
        for (int i = 0; i < 1000; i++) { uint v = BitConverter.ToUInt32(r, i * 4); BitConverter.GetBytes(v).CopyTo(r, i * 4 + 2); }
        for (uint i = 0; i < 4002; i++) Assert.Equal(r[i], m.Memory.Read8(0x6000 + i));
        Assert.Equal(0x6000u + 4000, m.Cpu.Esi);
        Assert.Equal(0x6002u + 4000, m.Cpu.Edi);
        Assert.Equal(6ul + 3000 + 1000 + 1, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void MisalignedStosdAcrossPages(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(edi, 0x4FFE); a.mov(ecx, 2000); a.mov(eax, 0xA1B2C3D4); a.rep.stosd(); });
        m.Run();
        Halted(m);
        for (uint i = 0; i < 2000; i++) Assert.Equal(0xA1B2C3D4u, m.Memory.Read32(0x4FFE + i * 4));
        Assert.Equal(0u, m.Memory.Read8(0x4FFD));
        Assert.Equal(0u, m.Memory.Read8(0x4FFE + 8000));
        Assert.Equal(0x4FFEu + 8000, m.Cpu.Edi);
        Assert.Equal(3ul + 2000 + 1, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void MovswAcrossPagesAndStopInTheMiddle(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(esi, 0x7F01); a.mov(edi, 0x20333); a.mov(ecx, 5000); a.rep.movsw(); a.mov(ebx, 1); });
        for (uint i = 0; i < 10000; i++) m.Memory.Write8(0x7F01 + i, (byte)(i * 7));
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(3 + 3217));
        Assert.Equal(5000u - 3217, m.Cpu.Ecx);
        Assert.Equal(0x7F01u + 3217 * 2, m.Cpu.Esi);
        Assert.Equal(0x20333u + 3217 * 2, m.Cpu.Edi);
        Assert.Equal(0, m.Memory.Read8(0x20333 + 3217 * 2));
        Assert.Equal(TestMachine.CodeBase + 15, m.Cpu.Eip);
        m.Run();
        Halted(m);
        for (uint i = 0; i < 10000; i++) Assert.Equal((byte)(i * 7), m.Memory.Read8(0x20333 + i));
        Assert.Equal(1u, m.Cpu.Ebx);
        Assert.Equal(3ul + 5000 + 2, m.Cpu.Icount);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void RepStosOverLaterCodeOfTheSameBlockTakesEffect(CpuTier bc)
    {
        // rep stosb turns the 16 nops after it into inc eax.
        uint nops = TestMachine.CodeBase + (uint)TestMachine.Assemble(a => { a.xor(eax, eax); a.mov(edi, 0x12345678); a.mov(ecx, 16); a.mov(dl, 0x40); a.xchg(eax, edx); a.rep.stosb(); a.mov(eax, 0); }).Length;
        var m = new TestMachine(blockCache: bc).Load(a =>
        {
            a.xor(eax, eax); a.mov(edi, nops); a.mov(ecx, 16); a.mov(dl, 0x40); a.xchg(eax, edx); a.rep.stosb(); a.mov(eax, 0);
            for (int i = 0; i < 16; i++) a.nop();
        });
        m.Run();
        Halted(m);
        Assert.Equal(16u, m.Cpu.Eax);
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void SixteenBitAddressWrapInLongRun(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.mov(edi, 0x1234FF00); a.mov(ecx, 0x200); a.mov(al, 0x5A); a.db(0x67); a.rep.stosb(); });
        m.Run();
        Halted(m);
        // DI runs FF00..FFFF then wraps to 0000..00FF; ES base is 0, so bytes land at 0xFF00.. and 0x0000..
        Assert.Equal(0x12340100u, m.Cpu.Edi);
        Assert.Equal(0x5A, m.Memory.Read8(0xFFFF));
        Assert.Equal(0x5A, m.Memory.Read8(0x0000));
        Assert.Equal(0x5A, m.Memory.Read8(0x00FF));
        Assert.Equal(0, m.Memory.Read8(0x0100));
    }

    /// <summary>Reference: element-by-element rep movs (DF given) on a byte array.</summary>
    private static void RefMovs(byte[] mem, int si, int di, int count, int size, bool down)
    {
        for (int i = 0; i < count; i++)
        {
            var tmp = new byte[size];
            Array.Copy(mem, si, tmp, 0, size);
            Array.Copy(tmp, 0, mem, di, size);
            si += down ? -size : size;
            di += down ? -size : size;
        }
    }

    [Theory]
    [InlineData(true, 0x20000, 0x20803, 4, 3000)]  // backward, destination above and overlapping: a memmove
    [InlineData(true, 0x20803, 0x20000, 4, 3000)]  // backward, destination below and overlapping: replicates
    [InlineData(true, 0x20001, 0x20000, 2, 3000)]  // backward, overlapping inside one element
    [InlineData(false, 0x20000, 0x20002, 4, 3000)] // forward, overlapping inside one element
    [InlineData(true, 0x20000, 0x30FFF, 1, 9000)]  // backward bytes across pages
    [InlineData(false, 0x20000, 0x20000, 4, 3000)] // onto itself
    public void BackwardAndOverlappingMovsMatchElementByElement(bool down, int src, int dst, int size, int count)
    {
        foreach (CpuTier bc in Enum.GetValues<CpuTier>())
        {
            int top = (count - 1) * size;
            uint si = (uint)(down ? src + top : src), di = (uint)(down ? dst + top : dst);
            var m = new TestMachine(blockCache: bc).Load(a =>
            {
                if (down) a.std();
                a.mov(esi, si); a.mov(edi, di); a.mov(ecx, (uint)count);
                if (size == 1) a.rep.movsb(); else if (size == 2) a.rep.movsw(); else a.rep.movsd();
                a.cld();
            });
            var r = new byte[0x40000];
            for (int i = 0x20000; i < 0x34000; i++) { r[i] = (byte)(i * 13 + (i >> 8)); m.Memory.Write8((uint)i, r[i]); }
            RefMovs(r, (int)si, (int)di, count, size, down);
            m.Run();
            Halted(m);
            for (int i = 0x20000; i < 0x34000; i++) Assert.True(r[i] == m.Memory.Read8((uint)i), $"bc={bc} byte {i:x}: {r[i]:x2} vs {m.Memory.Read8((uint)i):x2}");
            int step = down ? -size * count : size * count;
            Assert.Equal((uint)(si + step), m.Cpu.Esi);
            Assert.Equal((uint)(di + step), m.Cpu.Edi);
            Assert.Equal(0u, m.Cpu.Ecx);
            Assert.Equal((ulong)((down ? 1 : 0) + 3 + count + 1 + 1), m.Cpu.Icount);
        }
    }

    [Theory, MemberData(nameof(CpuTiers.All), MemberType = typeof(CpuTiers))]
    public void BackwardStoswAcrossPagesStopsExactly(CpuTier bc)
    {
        var m = new TestMachine(blockCache: bc).Load(a => { a.std(); a.mov(edi, 0x50FFF); a.mov(ecx, 6000); a.mov(eax, 0xBEEF); a.rep.stosw(); a.cld(); });
        Assert.Equal(StopReason.InstructionLimit, m.Cpu.Run(4 + 4321));
        Assert.Equal(6000u - 4321, m.Cpu.Ecx);
        Assert.Equal(0x50FFFu - 4321 * 2, m.Cpu.Edi);
        m.Run();
        Halted(m);
        for (uint i = 0; i < 6000; i++) Assert.Equal(0xBEEF, m.Memory.Read16(0x50FFF - i * 2));
        Assert.Equal(0, m.Memory.Read8(0x50FFF - 6000 * 2 + 1));
        Assert.Equal(0, m.Memory.Read8(0x51001));
        Assert.Equal(0x50FFFu - 6000 * 2, m.Cpu.Edi);
    }

    [Theory]
    [InlineData(2, 1, 0x20FF0, 9000, 0x21F37)]   // repne scasb: strlen-like, match on a later page
    [InlineData(2, 1, 0x20FF0, 300, -1)]         // repne scasb: no match, count runs out
    [InlineData(1, 1, 0x20FF0, 9000, 0x22001)]   // repe scasb: first mismatch two pages on
    [InlineData(2, 2, 0x20FF1, 4000, 0x22011)]   // repne scasw, misaligned start
    [InlineData(1, 4, 0x20FF0, 3000, 0x21000)]   // repe scasd
    public void ScasMatchesElementByElement(int rep, int size, int start, int count, int special)
    {
        foreach (CpuTier bc in Enum.GetValues<CpuTier>())
        {
            var m = new TestMachine(blockCache: bc).Load(a =>
            {
                a.mov(edi, (uint)start); a.mov(ecx, (uint)count); a.mov(eax, 0x5A5A5A5Au);
                if (rep == 2) { if (size == 1) a.repne.scasb(); else if (size == 2) a.repne.scasw(); else a.repne.scasd(); }
                else { if (size == 1) a.repe.scasb(); else if (size == 2) a.repe.scasw(); else a.repe.scasd(); }
            });
            var r = new byte[0x30000];
            for (int i = 0x20000; i < 0x30000; i++) r[i] = 0x5A;
            if (rep == 2) for (int i = 0x20000; i < 0x30000; i++) r[i] = (byte)(i % 7 == 0 ? 0x11 : 0x22);
            if (special >= 0) for (int i = 0; i < size; i++) r[special + i] = (byte)(0x5A ^ (rep == 1 ? 0xFF : 0));
            if (rep == 2 && special >= 0) for (int i = 0; i < size; i++) r[special + i] = 0x5A;
            for (int i = 0x20000; i < 0x30000; i++) m.Memory.Write8((uint)i, r[i]);
            // Reference
            uint mask = size == 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1, av = 0x5A5A5A5Au & mask;
            int di = start, done = 0; uint last = 0;
            while (done < count)
            {
                uint v = 0;
                for (int i = 0; i < size; i++) v |= (uint)r[di + i] << (8 * i);
                last = v; di += size; done++;
                if ((v == av) == (rep == 2)) break;
            }
            m.Run();
            Halted(m);
            Assert.Equal((uint)di, m.Cpu.Edi);
            Assert.Equal((uint)(count - done), m.Cpu.Ecx);
            Assert.Equal(av == last, m.Cpu.ZF);
            Assert.Equal(av < last, m.Cpu.CF);
            Assert.Equal(3ul + (ulong)done + 1, m.Cpu.Icount);
        }
    }

    [Theory]
    [InlineData(1, 0x21FFD, 9000)]  // repe cmpsb, mismatch on the third page
    [InlineData(4, 0x21FFE, 3000)]  // repe cmpsd, mismatch inside an element
    [InlineData(2, -1, 3000)]       // repe cmpsw, all equal
    public void RepeCmpsMatchesElementByElement(int size, int mismatch, int count)
    {
        foreach (CpuTier bc in Enum.GetValues<CpuTier>())
        {
            const int src = 0x20003, dst = 0x40001;
            var m = new TestMachine(blockCache: bc).Load(a =>
            {
                a.mov(esi, src); a.mov(edi, dst); a.mov(ecx, (uint)count);
                if (size == 1) a.repe.cmpsb(); else if (size == 2) a.repe.cmpsw(); else a.repe.cmpsd();
            });
            var r = new byte[0x60000];
            for (int i = 0; i < 0x10000; i++) { r[src + i] = r[dst + i] = (byte)(i * 31); }
            if (mismatch >= 0) r[dst + (mismatch - src)] ^= 0x80;
            for (int i = 0x20000; i < 0x60000; i++) m.Memory.Write8((uint)i, r[i]);
            int si = src, di = dst, done = 0; uint la = 0, lb = 0;
            while (done < count)
            {
                uint va = 0, vb = 0;
                for (int i = 0; i < size; i++) { va |= (uint)r[si + i] << (8 * i); vb |= (uint)r[di + i] << (8 * i); }
                la = va; lb = vb; si += size; di += size; done++;
                if (va != vb) break;
            }
            m.Run();
            Halted(m);
            Assert.Equal((uint)si, m.Cpu.Esi);
            Assert.Equal((uint)di, m.Cpu.Edi);
            Assert.Equal((uint)(count - done), m.Cpu.Ecx);
            Assert.Equal(la == lb, m.Cpu.ZF);
            Assert.Equal(la < lb, m.Cpu.CF);
            Assert.Equal(3ul + (ulong)done + 1, m.Cpu.Icount);
        }
    }
}
