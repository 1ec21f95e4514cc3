using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// emulate_privileged_op and emulate_forced_invalid_op (xen/arch/x86/traps.c; xen-abi.md §8.3, §12):
/// the instruction is read from guest memory and decoded with Iced.
/// </summary>
public sealed partial class Hypervisor
{
    private static ReadOnlySpan<byte> ForcedEmulationPrefix => [0x0F, 0x0B, 0x78, 0x65, 0x6E]; // ud2; "xen"

    /// <summary>Reads up to 15 instruction bytes at CS:EIP; returns how many could be read.</summary>
    private int FetchInsn(Span<byte> buf, out uint firstUnreadable)
    {
        var cs = Cpu.Segs[Seg.CS];
        int n = 0;
        firstUnreadable = 0;
        for (; n < buf.Length; n++)
        {
            uint off = _f.Eip + (uint)n;
            uint lin = cs.Base + off;
            if (off > cs.Limit || lin >= Layout.HypervisorVirtStart || !Cpu.Translate(lin, Access.Read, false, out ulong pa))
            {
                Cpu.ClearFault();
                firstUnreadable = lin;
                break;
            }
            buf[n] = Cpu.Memory.Read8(pa);
        }
        return n;
    }

    /// <summary>ud2; "xen"; cpuid: the filtered CPUID, EIP past all 7 bytes (§8.3).</summary>
    private bool TryForcedEmulation()
    {
        Span<byte> b = stackalloc byte[7];
        if (FetchInsn(b, out _) < 7 || !b[..5].SequenceEqual(ForcedEmulationPrefix) || b[5] != 0x0F || b[6] != 0xA2) return false;
        CpuidTable.Query(Cpu.Eax, Cpu.Ecx, Privileged, Abi, out uint a, out uint bx, out uint c, out uint d);
        Cpu.Eax = a; Cpu.Ebx = bx; Cpu.Ecx = c; Cpu.Edx = d;
        _f.Eip += 7;
        Cpu.RetireEmulated(EmulatedInstruction.ForcedCpuid);
        return true;
    }

    /// <summary>#GP(0): I/O, cli/sti, clts, mov cr/dr, rdmsr/wrmsr, wbinvd (§12). False → bounce #GP(0).</summary>
    private bool EmulatePrivilegedOp()
    {
        Span<byte> buf = stackalloc byte[15];
        int n = FetchInsn(buf, out uint bad);
        if (n == 0)
        {
            // insn_fetch failure: Xen propagates a #PF at the unreadable byte.
            if (bad != 0) { PropagatePageFault(bad, 0); return true; }
            return false;
        }
        var decoder = Decoder.Create(32, new ByteArrayCodeReader(buf[..n].ToArray()), _f.Eip);
        decoder.Decode(out Instruction insn);
        if (insn.IsInvalid) return false;
        bool kernel = GuestCpl == 1;
        bool ok = insn.Mnemonic switch
        {
            Mnemonic.In or Mnemonic.Out or Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd
                or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd => EmulateIo(insn, kernel),
            Mnemonic.Cli or Mnemonic.Sti => IoplOk(kernel), // a no-op (Xen: "too dangerous")
            _ => kernel && EmulateKernelOp(insn),
        };
        if (!ok || IsStopped) return ok;
        if (insn.Mnemonic is not (Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd or Mnemonic.Outsb or Mnemonic.Outsw or Mnemonic.Outsd) || _ioDone)
        {
            _f.Eip = (uint)insn.NextIP;
            Cpu.RetireEmulated(EmulatedInstruction.PrivilegedOp);
        }
        if (_ioBreakpointHits != 0)
        {
            // pv_inject_DB: the emulated instruction completed; #DB follows with the matching B bits in DR6.
            Vcpu.DebugRegs[6] |= _ioBreakpointHits;
            Cpu.Dr[6] = Vcpu.DebugRegs[6];
            _ioBreakpointHits = 0;
            BounceTrap(Vectors.DB, false, 0);
        }
        return true;
    }

    /// <summary>I/O breakpoints the emulated instruction hit (4.19, check_guest_io_breakpoint).</summary>
    private uint _ioBreakpointHits;

    /// <summary>Set by an emulated mov to or from DRn that Xen answers with #UD (-ENODEV: DR4/DR5 with CR4.DE).</summary>
    private bool _emulationUd;

    private bool _ioDone;

    private bool EmulateKernelOp(in Instruction insn)
    {
        switch (insn.Mnemonic)
        {
            case Mnemonic.Clts:
                Vcpu.VirtualTs = false;
                SyncVirtualTs();
                return true;
            case Mnemonic.Wbinvd:
                return true; // ignored unless privileged (and then nothing to flush)
            case Mnemonic.Mov when insn.Op0Kind == OpKind.Register && insn.Op0Register.IsCR():
                return WriteCr(insn.Op0Register - Register.CR0, Cpu.Gpr[GprIndex(insn.Op1Register)]);
            case Mnemonic.Mov when insn.Op1Kind == OpKind.Register && insn.Op1Register.IsCR():
            {
                if (!ReadCr(insn.Op1Register - Register.CR0, out uint v)) return false;
                Cpu.Gpr[GprIndex(insn.Op0Register)] = v;
                return true;
            }
            case Mnemonic.Mov when insn.Op0Kind == OpKind.Register && insn.Op0Register.IsDR():
            {
                // -ENODEV → #UD, -EINVAL/-EPERM → #GP(0) (pv/misc-hypercalls.c set_debugreg's contract).
                long rc = SetDebugReg(insn.Op0Register - Register.DR0, Cpu.Gpr[GprIndex(insn.Op1Register)]);
                _emulationUd = rc == -Errno.ENODEV;
                return rc == 0;
            }
            case Mnemonic.Mov when insn.Op1Kind == OpKind.Register && insn.Op1Register.IsDR():
            {
                long v = GetDebugReg(insn.Op1Register - Register.DR0);
                _emulationUd = v == -Errno.ENODEV;
                if (v < 0) return false;
                Cpu.Gpr[GprIndex(insn.Op0Register)] = (uint)v;
                return true;
            }
            case Mnemonic.Rdmsr:
            {
                if (!TryReadMsr(Cpu.Ecx, out ulong v)) return false;
                Cpu.Eax = (uint)v; Cpu.Edx = (uint)(v >> 32);
                return true;
            }
            case Mnemonic.Wrmsr:
                WriteMsrEmulated(Cpu.Ecx, Cpu.Eax | ((ulong)Cpu.Edx << 32));
                return true;
            default:
                return false;
        }
    }

    private static int GprIndex(Register r) => r - Register.EAX;

    private bool ReadCr(int cr, out uint v)
    {
        switch (cr)
        {
            case 0: v = (Cpu.Cr0 & ~Cr0Bits.TS) | (Vcpu.VirtualTs ? Cr0Bits.TS : 0); return true;
            case 2: v = Vcpu.Cr2; return true;
            case 3: v = Boot.XenLayout.PackCr3(Mm.CurrentBaseMfn); return true;
            case 4: v = (Cpu.Cr4 & ~(Cr4Bits.PGE | Cr4Bits.PSE | Cr4Bits.DE)) | (Vcpu.GuestCr4De ? Cr4Bits.DE : 0); return true;
            default: v = 0; return false;
        }
    }

    private bool WriteCr(int cr, uint v)
    {
        switch (cr)
        {
            case 0:
                if (((v ^ Cpu.Cr0) & ~Cr0Bits.TS) != 0) return false; // only TS may change
                Vcpu.VirtualTs = (v & Cr0Bits.TS) != 0;
                SyncVirtualTs();
                return true;
            case 2:
                Vcpu.Cr2 = v;
                SharedInfo.SetCr2(Vcpu.Id, v);
                return true;
            case 3:
                return Mm.NewBaseptr((v >> 12) | (v << 20)); // xen_cr3_to_pfn
            case 4:
            {
                // 4.19 lets a PV guest toggle CR4.DE (pv_fixup_guest_cr4); 3.1 refuses any change.
                uint shown = Cpu.Cr4 & ~(Cr4Bits.PGE | Cr4Bits.PSE | Cr4Bits.DE);
                if (!Xen4) return v == (Cpu.Cr4 & ~(Cr4Bits.PGE | Cr4Bits.PSE));
                if ((v & ~Cr4Bits.DE) != shown) return false;
                Vcpu.GuestCr4De = (v & Cr4Bits.DE) != 0;
                return true;
            }
            default:
                return false;
        }
    }

    /// <summary>
    /// iopl_ok (pv/emul-priv-op.c): the virtual IOPL against the ring the guest runs in; under
    /// VMASST_TYPE_architectural_iopl the guest kernel counts as ring 0 (as a native kernel would be).
    /// </summary>
    private bool IoplOk(bool kernel) => Vcpu.Iopl >= (kernel ? (Mm.ArchitecturalIopl ? 0 : 1) : 3);

    /// <summary>guest_io_okay: virtual IOPL ≥ ring (1 for the kernel, 3 for user), or the guest I/O bitmap allows it.</summary>
    private bool IoPermitted(uint port, int bytes, bool kernel)
    {
        if (IoplOk(kernel)) return true;
        if (Vcpu.IoBitmapPorts > port + (uint)bytes)
        {
            Span<byte> two = stackalloc byte[2];
            if (!Guest.TryRead(Vcpu.IoBitmap + (port >> 3), two)) return false;
            uint x = (uint)(two[0] | two[1] << 8);
            if ((x & (((1u << bytes) - 1) << (int)(port & 7))) == 0) return true;
        }
        return false;
    }

    private bool EmulateIo(in Instruction insn, bool kernel)
    {
        _ioDone = true;
        int size = insn.Mnemonic switch
        {
            Mnemonic.Insb or Mnemonic.Outsb => 1,
            Mnemonic.Insw or Mnemonic.Outsw => 2,
            Mnemonic.Insd or Mnemonic.Outsd => 4,
            _ => (insn.Mnemonic == Mnemonic.In ? insn.Op0Register : insn.Op1Register) switch { Register.AL => 1, Register.AX => 2, _ => 4 },
        };
        uint port = insn.Mnemonic switch
        {
            Mnemonic.In => insn.Op1Kind == OpKind.Immediate8 ? insn.Immediate8 : Cpu.Edx & 0xFFFF,
            Mnemonic.Out => insn.Op0Kind == OpKind.Immediate8 ? insn.Immediate8 : Cpu.Edx & 0xFFFF,
            _ => Cpu.Edx & 0xFFFF,
        };
        if (!IoPermitted(port, size, kernel)) return false;
        _ioBreakpointHits = IoBreakpointHits(port, size);
        uint mask = size == 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1;
        switch (insn.Mnemonic)
        {
            case Mnemonic.In:
                Cpu.Eax = (Cpu.Eax & ~mask) | (IoPortRead((ushort)port, size) & mask);
                return true;
            case Mnemonic.Out:
                IoPortWrite((ushort)port, size, Cpu.Eax & mask);
                return true;
        }
        // ins/outs (one iteration per emulation; rep restarts the instruction until ECX is 0).
        bool rep = insn.HasRepPrefix || insn.HasRepePrefix || insn.HasRepnePrefix;
        if (rep && Cpu.Ecx == 0) return true;
        int step = (_f.Eflags & Fl.DF) != 0 ? -size : size;
        bool isIns = insn.Mnemonic is Mnemonic.Insb or Mnemonic.Insw or Mnemonic.Insd;
        if (isIns)
        {
            uint addr = Cpu.Segs[Seg.ES].Base + Cpu.Edi;
            uint v = IoPortRead((ushort)port, size);
            Span<byte> b = stackalloc byte[4];
            BitConverter.TryWriteBytes(b, v);
            if (!Guest.TryWrite(addr, b[..size])) { PropagatePageFault(addr, PfErr.W | (kernel ? 0 : PfErr.U)); _ioDone = false; return true; }
            Cpu.Edi = (uint)(Cpu.Edi + step);
        }
        else
        {
            int seg = insn.SegmentPrefix == Register.None ? Seg.DS : insn.SegmentPrefix - Register.ES;
            uint addr = Cpu.Segs[seg].Base + Cpu.Esi;
            Span<byte> b = stackalloc byte[4];
            b.Clear();
            if (!Guest.TryRead(addr, b[..size])) { PropagatePageFault(addr, kernel ? 0 : PfErr.U); _ioDone = false; return true; }
            IoPortWrite((ushort)port, size, BitConverter.ToUInt32(b));
            Cpu.Esi = (uint)(Cpu.Esi + step);
        }
        if (rep)
        {
            Cpu.Ecx--;
            _ioDone = Cpu.Ecx == 0;
        }
        return true;
    }

    // ---- I/O ports: a domU owns none. Reads give all ones, writes vanish, except the PIT ports Xen emulates. ----

    private readonly PitChannel2 _pit = new();

    internal uint IoPortRead(ushort port, int size)
    {
        uint ones = size == 4 ? 0xFFFFFFFF : (1u << (size * 8)) - 1;
        if (size == 1 && port is 0x42 or 0x43 or 0x61)
            return _pit.Read(port, NowNs);
        return ones;
    }

    internal void IoPortWrite(ushort port, int size, uint value)
    {
        if (size == 1 && port is 0x42 or 0x43 or 0x61) _pit.Write(port, (byte)value, NowNs);
    }

    // ---- MSRs: a fixed deterministic set; only the hypercall-page MSR has an effect on write. ----

    public const uint MsrHypercallPage = 0x40000000;

    internal bool TryReadMsr(uint msr, out ulong value)
    {
        switch (msr)
        {
            case 0x10: value = Clock.Tsc(Cpu.Icount); return true;       // IA32_TIME_STAMP_COUNTER
            case 0x17: value = 0; return true;                           // IA32_PLATFORM_ID
            case 0x1B: value = 0xFEE00900; return true;                  // IA32_APIC_BASE (BSP, enabled)
            case 0x8B: value = 0; return true;                           // IA32_BIOS_SIGN_ID
            case 0x174: case 0x175: case 0x176: value = 0; return true;  // SYSENTER_*
            case 0x1A0: value = 1; return true;                          // IA32_MISC_ENABLE: fast strings
            case 0xC0000080: value = Cpu.Efer; return true;              // EFER
            default: value = 0; return false;
        }
    }

    /// <summary>wrmsr is ignored except MSR 0x40000000: (gmfn &lt;&lt; 12) | page index fills a hypercall page (§1).</summary>
    internal void WriteMsrEmulated(uint msr, ulong value)
    {
        if (msr != MsrHypercallPage) return;
        uint index = (uint)value & 0xFFF;
        uint mfn = (uint)(value >> 12);
        if (index != 0 || (value >> 44) != 0 || !Mm.IsGuestFrame(mfn)) return; // "Bad GMFN": ignored
        ulong pa = (ulong)mfn << 12;
        for (int i = 0; i < Boot.HypercallPage.StubCount; i++)
            Cpu.Memory.WriteBytes(pa + (ulong)(i * Boot.HypercallPage.StubSize), Boot.HypercallPage.Stub(i));
    }
}
