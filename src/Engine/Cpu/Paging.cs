using System.Runtime.CompilerServices;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu;

/// <summary>Kinds of linear access, for permission checks and #PF error codes (SDM vol. 3 §4.7).</summary>
public enum Access : byte { Read = 0, Write = 1, Execute = 2 }

/// <summary>Page-fault error code bits, SDM vol. 3 §4.7.</summary>
public static class PfErr
{
    public const uint P = 1, W = 2, U = 4, RSVD = 8, ID = 0x10;
}

/// <summary>
/// Linear→physical translation: 32-bit 2-level paging with PSE and PAE 3-level paging with NX
/// (SDM vol. 3 §4.3, §4.4), A/D updates, and a software TLB.
///
/// TLB: one 64-bit entry per 4 KiB virtual page (a flat 1 Mi-entry array, so there are no
/// conflict misses). Bits 0-5 are permissions (read/write/execute for supervisor and user),
/// bit 6 marks a global page, bits 12-39 the physical frame address, bits 40-63 the generation.
/// A flush increments the generation; invlpg clears one entry. Write permission is only cached
/// for a page whose dirty bit is already set, so the first write sets D. Stores to lines holding
/// decoded code are kept off the fast path by PhysicalMemory's code lines (PhysicalMemory.Marks.cs), not by the TLB.
/// </summary>
public sealed partial class X86Cpu
{
    private const ulong TlbRS = 1, TlbWS = 2, TlbRU = 4, TlbWU = 8, TlbXS = 0x10, TlbXU = 0x20, TlbGlobal = 0x40;
    private const int GenShift = 40;
    internal const ulong GenMask = ~((1ul << GenShift) - 1);
    internal const ulong FrameMask = ((1ul << GenShift) - 1) & ~0xFFFul;

    private readonly ulong[] _tlb = new ulong[1 << 20];
    private ulong _gen;
    private ulong _tlbR, _tlbW, _tlbX;

    /// <summary>Physical address width reported for PAE reserved-bit checks (P6 family: 36).</summary>
    public const int MaxPhysAddr = 36;

    /// <summary>
    /// The PAE root table is walked as a long-mode L3 (a 32-bit PV guest under 64-bit Xen, whose
    /// hardware runs the guest's L3 under Xen's own L4): its entries' bits 1, 2, 5 and 6 are not
    /// reserved (SDM vol. 3 §4.5, table 4-15). Xen ORs RW and USER into every present entry of a
    /// 32-bit guest's L3 (adjust_guest_l3e, xen/arch/x86/pv/mm.h), so RW and US there never restrict
    /// an access: the walk ignores them rather than rewriting the guest's table (docs/xen-model.md).
    /// </summary>
    public bool PaeRootIsLongModeL3;

    /// <summary>Flushes every TLB entry, global ones included.</summary>
    public void FlushTlb()
    {
        _gen += 1ul << GenShift;
        if (_gen == 0) { Array.Clear(_tlb); _gen = 1ul << GenShift; }
        _globalGen = _gen;
        RefreshTlbKeys();
    }

    private ulong _globalGen;

    /// <summary>Flushes non-global entries (a CR3 load with CR4.PGE set, SDM vol. 3 §4.10.4.1).</summary>
    public void FlushTlbNonGlobal()
    {
        if ((Cr4 & Cr4Bits.PGE) == 0) { FlushTlb(); return; }
        ulong keep = _globalGen;
        _gen += 1ul << GenShift;
        if (_gen == 0) { FlushTlb(); return; }
        _globalGen = keep;
        RefreshTlbKeys();
    }

    public void InvalidatePage(uint linear)
    {
        _tlb[linear >> 12] = 0;
        ChainEpoch++;
    }

    /// <summary>Recomputes the fast-path keys when CPL or the generation changes.</summary>
    private void RefreshTlbKeys()
    {
        ChainEpoch++;
        bool user = Cpl == 3;
        _tlbR = _gen | (user ? TlbRU : TlbRS);
        _tlbW = _gen | (user ? TlbWU : TlbWS);
        _tlbX = _gen | (user ? TlbXU : TlbXS);
    }

    /// <summary>Looks up the TLB; returns the physical address or ulong.MaxValue on a miss.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong TlbLookup(uint lin, ulong key)
    {
        ulong e = _tlb[lin >> 12];
        return (e & (GenMask | key)) == key ? (e & FrameMask) | (lin & 0xFFF) : ulong.MaxValue;
    }

    /// <summary>
    /// Translates a linear address for an access at the given privilege (user = CPL 3 data access;
    /// implicit supervisor accesses pass user=false). On failure raises #PF (sets CR2) and returns false.
    /// </summary>
    public bool Translate(uint lin, Access access, bool user, out ulong phys)
    {
        ulong e = _tlb[lin >> 12];
        ulong need = access switch
        {
            Access.Read => user ? TlbRU : TlbRS,
            Access.Write => user ? TlbWU : TlbWS,
            _ => user ? TlbXU : TlbXS,
        };
        if ((e & GenMask) != _gen && (e & TlbGlobal) != 0 && (e & GenMask) >= _globalGen)
        {
            e = (e & ~GenMask) | _gen; // a global entry survives a non-global flush
            _tlb[lin >> 12] = e;
        }
        if ((e & GenMask) == _gen && (e & need) != 0)
        {
            phys = (e & FrameMask) | (lin & 0xFFF);
            return true;
        }
        return Walk(lin, access, user, out phys);
    }

    /// <summary>
    /// The translation <see cref="Translate"/> would give a supervisor read of <paramref name="lin"/>
    /// straight from the TLB, with no walk, fault or TLB change; false when that needs more than a
    /// current-generation hit (a miss, or a global entry that a walk-free lookup would refresh).
    /// </summary>
    internal bool TlbSupervisorRead(uint lin, out ulong phys)
    {
        ulong e = _tlb[lin >> 12];
        phys = (e & FrameMask) | (lin & 0xFFF);
        return (e & GenMask) == _gen && (e & TlbRS) != 0;
    }

    /// <summary>Walks the page tables, updates A/D bits, fills the TLB or raises #PF.</summary>
    private bool Walk(uint lin, Access access, bool user, out ulong phys)
    {
        phys = 0;
        if (!PagingEnabled)
        {
            phys = lin;
            FillTlb(lin, lin & ~0xFFFu, TlbRS | TlbWS | TlbRU | TlbWU | TlbXS | TlbXU);
            return true;
        }
        bool write = access == Access.Write;
        bool nxe = (Efer & 0x800) != 0 && Pae;
        uint err = (write ? PfErr.W : 0) | (user ? PfErr.U : 0) | (access == Access.Execute && nxe ? PfErr.ID : 0);
        bool rw = true, us = true, nx = false, global;
        ulong leafAddr, leaf, frame;
        int leafWidth;
        if (!Pae)
        {
            ulong pdeAddr = (Cr3 & 0xFFFFF000u) + ((lin >> 22) << 2);
            uint pde = Memory.Read32(pdeAddr);
            if ((pde & 1) == 0) return PageFault(lin, err);
            rw &= (pde & 2) != 0; us &= (pde & 4) != 0;
            if ((pde & 0x80) != 0 && (Cr4 & Cr4Bits.PSE) != 0)
            {
                if ((pde & 0x200000) != 0) return PageFault(lin, err | PfErr.P | PfErr.RSVD);
                ulong big = (pde & 0xFFC00000u) | ((ulong)((pde >> 13) & 0xFF) << 32);
                if (!Permit(rw, us, nx, access, user)) return PageFault(lin, err | PfErr.P);
                leafAddr = pdeAddr; leaf = pde; leafWidth = 4;
                frame = big | (lin & 0x3FF000u);
                global = (pde & 0x100) != 0;
            }
            else
            {
                ulong pteAddr = (pde & 0xFFFFF000u) + (((lin >> 12) & 0x3FF) << 2);
                uint pte = Memory.Read32(pteAddr);
                if ((pte & 1) == 0) return PageFault(lin, err);
                rw &= (pte & 2) != 0; us &= (pte & 4) != 0;
                if (!Permit(rw, us, nx, access, user)) return PageFault(lin, err | PfErr.P);
                SetAccessed(pdeAddr, pde, 4);
                leafAddr = pteAddr; leaf = pte; leafWidth = 4;
                frame = pte & 0xFFFFF000u;
                global = (pte & 0x100) != 0;
            }
        }
        else
        {
            ulong rsvdHigh = ~((1ul << MaxPhysAddr) - 1) & (nxe ? 0x7FFFFFFFFFFFFFFFul : ulong.MaxValue);
            ulong pdpteAddr = (Cr3 & 0xFFFFFFE0u) + ((lin >> 30) << 3);
            ulong pdpte = Memory.Read64(pdpteAddr);
            if ((pdpte & 1) == 0) return PageFault(lin, err);
            // PDPTE reserved bits: 1-2, 5-8 and above MAXPHYADDR (SDM vol. 3 §4.4.1, table 4-8);
            // as a long-mode L3 only PS (no 1-GByte pages) and the bits above MAXPHYADDR.
            ulong pdpteRsvd = PaeRootIsLongModeL3 ? 0x80ul | (rsvdHigh & ~(1ul << 63)) : 0x1E6ul | (rsvdHigh & ~(1ul << 63)) | (1ul << 63);
            if ((pdpte & pdpteRsvd) != 0) return PageFault(lin, err | PfErr.P | PfErr.RSVD);
            if (PaeRootIsLongModeL3 && nxe && (pdpte >> 63) != 0) nx = true;
            ulong pdeAddr = (pdpte & 0xFFFFFF000ul) + (((lin >> 21) & 0x1FF) << 3);
            ulong pde = Memory.Read64(pdeAddr);
            if ((pde & 1) == 0) return PageFault(lin, err);
            if ((pde & rsvdHigh) != 0) return PageFault(lin, err | PfErr.P | PfErr.RSVD);
            rw &= (pde & 2) != 0; us &= (pde & 4) != 0; nx |= nxe && (pde >> 63) != 0;
            if ((pde & 0x80) != 0)
            {
                if ((pde & 0x1FE000) != 0) return PageFault(lin, err | PfErr.P | PfErr.RSVD);
                if (!Permit(rw, us, nx, access, user)) return PageFault(lin, err | PfErr.P);
                leafAddr = pdeAddr; leaf = pde; leafWidth = 8;
                frame = (pde & 0xFFFE00000ul) | (lin & 0x1FF000u);
                global = (pde & 0x100) != 0;
            }
            else
            {
                ulong pteAddr = (pde & 0xFFFFFF000ul) + (((lin >> 12) & 0x1FF) << 3);
                ulong pte = Memory.Read64(pteAddr);
                if ((pte & 1) == 0) return PageFault(lin, err);
                if ((pte & rsvdHigh) != 0) return PageFault(lin, err | PfErr.P | PfErr.RSVD);
                rw &= (pte & 2) != 0; us &= (pte & 4) != 0; nx |= nxe && (pte >> 63) != 0;
                if (!Permit(rw, us, nx, access, user)) return PageFault(lin, err | PfErr.P);
                SetAccessed(pdeAddr, pde, 8);
                leafAddr = pteAddr; leaf = pte; leafWidth = 8;
                frame = pte & 0xFFFFFF000ul;
                global = (pte & 0x100) != 0;
            }
        }
        // Accessed on the leaf; dirty on a write (SDM vol. 3 §4.8).
        ulong newLeaf = leaf | 0x20 | (write ? 0x40u : 0u);
        if (newLeaf != leaf)
        {
            if (leafWidth == 4) Memory.Write32(leafAddr, (uint)newLeaf); else Memory.Write64(leafAddr, newLeaf);
        }
        bool dirty = (newLeaf & 0x40) != 0;
        bool wp = (Cr0 & Cr0Bits.WP) != 0;
        ulong perms = TlbRS | (us ? TlbRU : 0) | (nx ? 0 : TlbXS | (us ? TlbXU : 0));
        if (dirty)
            perms |= ((rw || !wp) ? TlbWS : 0) | (rw && us ? TlbWU : 0);
        if (global && (Cr4 & Cr4Bits.PGE) != 0) perms |= TlbGlobal;
        phys = frame | (lin & 0xFFF);
        FillTlb(lin, frame, perms);
        return true;
    }

    /// <summary>Combined U/S, R/W and NX rules, SDM vol. 3 §4.6 (CR0.WP governs supervisor writes).</summary>
    private bool Permit(bool rw, bool us, bool nx, Access access, bool user)
    {
        if (user && !us) return false;
        if (access == Access.Execute) return !nx;
        if (access != Access.Write || rw) return true;
        return !user && (Cr0 & Cr0Bits.WP) == 0;
    }

    private void SetAccessed(ulong addr, ulong entry, int width)
    {
        if ((entry & 0x20) != 0) return;
        if (width == 4) Memory.Write32(addr, (uint)entry | 0x20); else Memory.Write64(addr, entry | 0x20);
    }

    private void FillTlb(uint lin, ulong frame, ulong perms)
    {
        if ((frame >> PhysicalMemory.PageShift) >= Memory.FrameCount) return; // open bus: always slow path
        if (_dataBreakpointsActive && IsBreakpointPage(lin)) return; // Breakpoints.cs: every access checked
        _tlb[lin >> 12] = _gen | (frame & FrameMask) | perms;
        ChainEpoch++;
    }

    private bool PageFault(uint lin, uint err)
    {
        Cr2 = lin;
        RaiseFault(Vectors.PF, err, lin);
        return false;
    }
}
