using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using Iced.Intel;
using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Handlers;

/// <summary>One iteration of a string instruction; it reads before it writes and updates (E)SI/(E)DI last.</summary>
internal interface IStringOp
{
    static abstract void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta);
    /// <summary>cmps/scas: repe/repne also stop on ZF.</summary>
    static abstract bool Compares { get; }
    /// <summary>ins/outs: the I/O permission check applies.</summary>
    static abstract bool Io { get; }
    /// <summary>
    /// Runs up to max iterations at once (downwards when backward, i.e. DF=1) when none of them
    /// can fault or touch decoded code (one page each side); returns how many ran (0: take the
    /// one-at-a-time path). Leaves (E)CX to the caller.
    /// </summary>
    static virtual ulong Bulk(X86Cpu c, ref DecodedInsn d, uint amask, ulong max, bool backward) => 0;
}

/// <summary>
/// movs, cmps, scas, lods, stos, ins, outs with rep/repe/repne (SDM vol. 2). (E)SI, (E)DI and (E)CX
/// follow the address size; the source segment may be overridden, the destination is always ES.
/// A repeated instruction runs up to min(count, budget) iterations per call and counts one
/// instruction per completed iteration (see <see cref="X86Cpu.Run"/>'s counting rule); when
/// iterations remain it restarts itself, so the machine can stop between any two iterations.
/// repne on movs/lods/stos/ins/outs behaves as rep.
/// </summary>
internal static unsafe class StringOps
{
    public static delegate*<X86Cpu, ref DecodedInsn, void> Select(ref DecodedInsn d)
    {
        var insn = d.Insn;
        delegate*<X86Cpu, ref DecodedInsn, void> h;
        switch (insn.Code)
        {
            case Code.Movsb_m8_m8: case Code.Movsw_m16_m16: case Code.Movsd_m32_m32: h = &Run<MovsOp>; break;
            case Code.Cmpsb_m8_m8: case Code.Cmpsw_m16_m16: case Code.Cmpsd_m32_m32: h = &Run<CmpsOp>; break;
            case Code.Scasb_AL_m8: case Code.Scasw_AX_m16: case Code.Scasd_EAX_m32: h = &Run<ScasOp>; break;
            case Code.Lodsb_AL_m8: case Code.Lodsw_AX_m16: case Code.Lodsd_EAX_m32: h = &Run<LodsOp>; break;
            case Code.Stosb_m8_AL: case Code.Stosw_m16_AX: case Code.Stosd_m32_EAX: h = &Run<StosOp>; break;
            case Code.Insb_m8_DX: case Code.Insw_m16_DX: case Code.Insd_m32_DX: h = &Run<InsOp>; break;
            case Code.Outsb_DX_m8: case Code.Outsw_DX_m16: case Code.Outsd_DX_m32: h = &Run<OutsOp>; break;
            default: return null;
        }
        d.Size = (byte)insn.MemorySize.GetSize();
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Advance(X86Cpu c, int reg, uint amask, uint delta) =>
        c.Gpr[reg] = (c.Gpr[reg] & ~amask) | ((c.Gpr[reg] + delta) & amask);

    private static void Run<T>(X86Cpu c, ref DecodedInsn d) where T : struct, IStringOp
    {
        int s = d.Size;
        uint amask = d.AddrSize == 4 ? 0xFFFFFFFF : 0xFFFF;
        uint delta = c.DF ? (uint)-s : (uint)s;
        if (T.Io && !Io.Allowed(c, c.Edx & 0xFFFF, s)) return;
        if (d.Rep == 0)
        {
            T.Step(c, ref d, amask, delta);
            return;
        }
        uint count = c.Ecx & amask;
        if (count == 0) return; // retires as one instruction
        ulong n = Math.Min(count, c.Budget);
        if ((c.FlagsReg & Fl.TF) != 0) n = 1; // single-step traps after every iteration
        ulong done = 0;
        bool stopped = false;
        bool backward = delta != (uint)s;
        while (done < n)
        {
            ulong k = T.Bulk(c, ref d, amask, n - done, backward);
            if (k != 0)
            {
                done += k;
                c.Gpr[Reg.ECX] = (c.Gpr[Reg.ECX] & ~amask) | ((c.Gpr[Reg.ECX] - (uint)k) & amask);
                if (T.Compares && (d.Rep == 1 ? !c.ZF : c.ZF)) { stopped = true; break; }
                continue;
            }
            T.Step(c, ref d, amask, delta);
            if (c.Faulted)
            {
                c.RetireIterations(done); // earlier iterations completed; the faulting one does not count
                return;
            }
            done++;
            c.Gpr[Reg.ECX] = (c.Gpr[Reg.ECX] & ~amask) | ((c.Gpr[Reg.ECX] - 1) & amask);
            if (T.Compares && (d.Rep == 1 ? !c.ZF : c.ZF)) { stopped = true; break; }
            if (c.DataBreakpointHits != 0) break; // #DB after this iteration (SDM vol. 3 §17.3.1.2)
        }
        c.RetireIterations(done - 1); // the run loop adds the last one
        if (!stopped && (c.Ecx & amask) != 0)
        {
            c.Eip = d.Eip; // restart for the remaining iterations
            c.Exit |= CpuExit.Branch;
        }
        else if (done > 1) c.Exit |= CpuExit.Branch; // the block's instruction budget is stale
    }

    /// <summary>
    /// Iterations of size s from off that stay within its page and do not wrap the address
    /// size (amask): upwards to the end, or (backward) downwards to the start.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong RunLength(X86Cpu c, int seg, uint off, int s, uint amask, ulong max, bool backward)
    {
        uint o = (c.Segs[seg].Base + off) & 0xFFF;
        ulong k, toWrap;
        if (!backward)
        {
            k = (ulong)(0x1000 - o) / (uint)s;
            toWrap = ((ulong)amask + 1 - off) / (uint)s;
        }
        else
        {
            if (o + (uint)s > 0x1000) return 0; // the first element crosses the page
            k = o / (uint)s + 1;
            toWrap = off / (uint)s + 1;
        }
        if (toWrap < k) k = toWrap;
        return max < k ? max : k;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Element(ReadOnlySpan<byte> span, int at, int s) =>
        s == 1 ? span[at] : s == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(span.Slice(at)) : BinaryPrimitives.ReadUInt32LittleEndian(span.Slice(at));

    private struct MovsOp : IStringOp
    {
        public static bool Compares => false;
        public static bool Io => false;

        public static ulong Bulk(X86Cpu c, ref DecodedInsn d, uint amask, ulong max, bool backward)
        {
            int s = d.Size;
            uint si = c.Esi & amask, di = c.Edi & amask;
            ulong k = RunLength(c, d.MemSeg, si, s, amask, max, backward);
            ulong kd = RunLength(c, Seg.ES, di, s, amask, max, backward);
            if (kd < k) k = kd;
            if (k < 2) return 0;
            int len = (int)k * s;
            uint back = backward ? (uint)(len - s) : 0; // the run's lowest element is the last one copied
            if (!c.FastReadRun(d.MemSeg, si - back, len, out ulong src) || !c.FastWriteRun(Seg.ES, di - back, len, out ulong dst)) return 0;
            // Element-by-element copying onto an overlapping destination ahead of the source
            // (later when forward, lower when backward) replicates a pattern; leave that to the
            // one-at-a-time path. Everything else is a memmove.
            if (!backward ? dst > src && dst < src + (ulong)len : dst < src && dst + (ulong)len > src) return 0;
            c.RamSpan(src, len).CopyTo(c.RamSpan(dst, len));
            uint delta = backward ? (uint)-len : (uint)len;
            Advance(c, Reg.ESI, amask, delta);
            Advance(c, Reg.EDI, amask, delta);
            return k;
        }

        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint v = c.Read(d.MemSeg, c.Esi & amask, s);
            if (c.Faulted) return;
            c.Write(Seg.ES, c.Edi & amask, s, v);
            if (c.Faulted) return;
            Advance(c, Reg.ESI, amask, delta);
            Advance(c, Reg.EDI, amask, delta);
        }
    }

    private struct CmpsOp : IStringOp
    {
        public static bool Compares => true;
        public static bool Io => false;

        /// <summary>repe cmps upwards: runs up to and including the first mismatching element.</summary>
        public static ulong Bulk(X86Cpu c, ref DecodedInsn d, uint amask, ulong max, bool backward)
        {
            if (backward || d.Rep != 1) return 0;
            int s = d.Size;
            uint si = c.Esi & amask, di = c.Edi & amask;
            ulong k = RunLength(c, d.MemSeg, si, s, amask, max, false);
            ulong kd = RunLength(c, Seg.ES, di, s, amask, max, false);
            if (kd < k) k = kd;
            if (k < 2) return 0;
            int len = (int)k * s;
            if (!c.FastReadRun(d.MemSeg, si, len, out ulong src) || !c.FastReadRun(Seg.ES, di, len, out ulong dst)) return 0;
            ReadOnlySpan<byte> a = c.RamSpan(src, len), b = c.RamSpan(dst, len);
            ulong first = (ulong)(a.CommonPrefixLength(b) / s); // index of the first differing element
            ulong n = first < k ? first + 1 : k;
            int last = (int)(n - 1) * s;
            uint va = Element(a, last, s), vb = Element(b, last, s);
            c.SetCc(CcOp.Sub, s, va - vb, va, vb);
            uint delta = (uint)((int)n * s);
            Advance(c, Reg.ESI, amask, delta);
            Advance(c, Reg.EDI, amask, delta);
            return n;
        }
        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint a = c.Read(d.MemSeg, c.Esi & amask, s);
            if (c.Faulted) return;
            uint b = c.Read(Seg.ES, c.Edi & amask, s);
            if (c.Faulted) return;
            c.SetCc(CcOp.Sub, s, a - b, a, b);
            Advance(c, Reg.ESI, amask, delta);
            Advance(c, Reg.EDI, amask, delta);
        }
    }

    private struct ScasOp : IStringOp
    {
        public static bool Compares => true;
        public static bool Io => false;

        /// <summary>repe/repne scas upwards: runs up to and including the first element that stops it.</summary>
        public static ulong Bulk(X86Cpu c, ref DecodedInsn d, uint amask, ulong max, bool backward)
        {
            if (backward) return 0;
            int s = d.Size;
            uint di = c.Edi & amask;
            ulong k = RunLength(c, Seg.ES, di, s, amask, max, false);
            if (k < 2) return 0;
            int len = (int)k * s;
            if (!c.FastReadRun(Seg.ES, di, len, out ulong pa)) return 0;
            ReadOnlySpan<byte> span = c.RamSpan(pa, len);
            uint a = c.GetReg(Reg.EAX, s);
            bool stopOnEqual = d.Rep == 2; // repne stops at a match, repe at a mismatch
            int j = -1; // element that stops the run
            if (s == 1) j = stopOnEqual ? span.IndexOf((byte)a) : span.IndexOfAnyExcept((byte)a);
            else
            {
                for (int i = 0; i < (int)k; i++)
                    if ((Element(span, i * s, s) == a) == stopOnEqual) { j = i; break; }
            }
            ulong n = j < 0 ? k : (ulong)j + 1;
            uint b = Element(span, (int)(n - 1) * s, s);
            c.SetCc(CcOp.Sub, s, a - b, a, b);
            Advance(c, Reg.EDI, amask, (uint)((int)n * s));
            return n;
        }
        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint b = c.Read(Seg.ES, c.Edi & amask, s);
            if (c.Faulted) return;
            uint a = c.GetReg(Reg.EAX, s);
            c.SetCc(CcOp.Sub, s, a - b, a, b);
            Advance(c, Reg.EDI, amask, delta);
        }
    }

    private struct LodsOp : IStringOp
    {
        public static bool Compares => false;
        public static bool Io => false;
        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint v = c.Read(d.MemSeg, c.Esi & amask, s);
            if (c.Faulted) return;
            c.SetReg(Reg.EAX, s, v);
            Advance(c, Reg.ESI, amask, delta);
        }
    }

    private struct StosOp : IStringOp
    {
        public static bool Compares => false;
        public static bool Io => false;

        public static ulong Bulk(X86Cpu c, ref DecodedInsn d, uint amask, ulong max, bool backward)
        {
            int s = d.Size;
            uint di = c.Edi & amask;
            ulong k = RunLength(c, Seg.ES, di, s, amask, max, backward);
            if (k < 2) return 0;
            int len = (int)k * s;
            uint back = backward ? (uint)(len - s) : 0;
            if (!c.FastWriteRun(Seg.ES, di - back, len, out ulong dst)) return 0;
            Span<byte> span = c.RamSpan(dst, len);
            uint v = c.Gpr[Reg.EAX];
            if (s == 1) span.Fill((byte)v);
            else if (s == 2) { for (int i = 0; i < len; i += 2) BinaryPrimitives.WriteUInt16LittleEndian(span.Slice(i), (ushort)v); }
            else { for (int i = 0; i < len; i += 4) BinaryPrimitives.WriteUInt32LittleEndian(span.Slice(i), v); }
            Advance(c, Reg.EDI, amask, backward ? (uint)-len : (uint)len);
            return k;
        }

        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            c.Write(Seg.ES, c.Edi & amask, s, c.GetReg(Reg.EAX, s));
            if (c.Faulted) return;
            Advance(c, Reg.EDI, amask, delta);
        }
    }

    private struct InsOp : IStringOp
    {
        public static bool Compares => false;
        public static bool Io => true;
        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint di = c.Edi & amask;
            // Probe first: reading a port can have side effects, so it happens only if the store will succeed.
            if (!c.ProbeWrite(Seg.ES, di, s)) return;
            uint v = c.Host.PortIn(c, (ushort)c.Edx, s);
            c.Write(Seg.ES, di, s, v);
            if (c.Faulted) return;
            Advance(c, Reg.EDI, amask, delta);
        }
    }

    private struct OutsOp : IStringOp
    {
        public static bool Compares => false;
        public static bool Io => true;
        public static void Step(X86Cpu c, ref DecodedInsn d, uint amask, uint delta)
        {
            int s = d.Size;
            uint v = c.Read(d.MemSeg, c.Esi & amask, s);
            if (c.Faulted) return;
            c.Host.PortOut(c, (ushort)c.Edx, s, v);
            Advance(c, Reg.ESI, amask, delta);
        }
    }
}
