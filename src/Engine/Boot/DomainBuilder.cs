using System.Text;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>
/// Builds a domU the way Xen 3.1's libxc does (docs/xen-abi.md §7) into a fresh machine: loads the
/// kernel, appends the BSD symtab, writes the p2m, start_info, xenstore/console pages, initial page
/// tables, hypercall page, shared_info and M2P. Xen's L2 slots are left to the hypervisor model.
/// </summary>
public static class DomainBuilder
{
    public static BuiltDomain Build(XenGuestInfo guest, byte[] image, DomainBuildOptions options)
    {
        ArgumentNullException.ThrowIfNull(guest);
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(options);
        byte[] cmdLine = Encoding.UTF8.GetBytes(options.CommandLine);
        if (cmdLine.Length >= StartInfo.CmdLineSize || cmdLine.Contains((byte)0))
            throw new BootImageException(BootError.BadOptions,
                $"command line must be at most {StartInfo.CmdLineSize - 1} bytes without NULs (got {cmdLine.Length})");
        if (options.MemoryMiB == 0 || options.MemoryMiB > MachineFrameMap.MaxMachineFrames / 256)
            throw new BootImageException(BootError.BadOptions,
                $"guest memory {options.MemoryMiB} MiB is outside 1..{MachineFrameMap.MaxMachineFrames / 256} MiB");

        var elf = ElfImage.Parse(image);
        byte[]? symtab = guest.BsdSymtab ? BsdSymtab.Build(elf) : null;
        uint nrPages = options.MemoryMiB * 256;
        var v = DomainVirtualLayout.Compute(guest, nrPages, (uint)(symtab?.Length ?? 0));
        var frames = MachineFrameMap.Create(nrPages, options.SpareXenFrames);
        var p2m = new uint[nrPages];
        for (uint pfn = 0; pfn < nrPages; pfn++) p2m[pfn] = frames.PfnToMfn(pfn);

        // A new machine is all zeroes: every domain page not written below is cleared (§7).
        var mem = new PhysicalMemory(frames.TotalFrames);
        var view = new GuestPhysicalView(mem, p2m);
        LoadKernel(view, elf, guest, v, symtab);
        WriteP2m(view, v, p2m);
        WriteXenFrames(mem, frames);

        bool dom0 = options.InitialDomain;
        var tables = InitialPageTables.Write(mem, v, p2m, guest.IsPae);
        var domain = new BuiltDomain
        {
            Memory = mem,
            Guest = guest,
            InitialDomain = dom0,
            Frames = frames,
            P2m = p2m,
            Virtual = v,
            PageTables = tables,
            XenSlotL2 = XenSlotL2(tables, v, guest.IsPae),
            Vcpu0 = new InitialVcpuState
            {
                Eip = guest.Entry,
                Esp = v.BootStackTop,
                Esi = v.StartInfo,
                KernelSs = XenLayout.FlatKernelSs,
                KernelSp = v.BootStackTop,
                Cr3Mfn = tables[0].Mfn,
                VmAssist = guest.PaeExtendedCr3 ? 1u << InitialVcpuState.VmAssistPaeExtendedCr3 : 0,
            },
        };

        // §4.1. For dom0 the console union means dom0_vga_console_info offset/size: 0 = no VGA console.
        StartInfo.Write(mem, domain.StartInfoMfn, new StartInfo.Fields(
            guest.Layout.StartInfoMagic, nrPages, domain.SharedInfoMfn << 12, domain.StartInfoFlags,
            domain.StoreMfn, BuiltDomain.StoreEvtchn,
            dom0 ? 0 : domain.ConsoleMfn, dom0 ? 0 : BuiltDomain.ConsoleEvtchn,
            v.PageTables, v.NrPtFrames, v.P2mStart, cmdLine));
        if (guest.HypercallPage is { } hp)
            HypercallPage.Fill(view, hp - guest.VirtBase);
        return domain;
    }

    /// <summary>Copies p_filesz of each PT_LOAD segment (the rest of p_memsz is already zero) and the symtab.</summary>
    private static void LoadKernel(GuestPhysicalView view, ElfImage elf, XenGuestInfo guest, DomainVirtualLayout v, byte[]? symtab)
    {
        foreach (var s in guest.Segments)
            view.WriteBytes(s.VirtualAddress - guest.VirtBase, elf.Slice(s.FileOffset, s.FileSize, "PT_LOAD segment"));
        if (symtab is not null)
            view.WriteBytes(v.SymtabStart - guest.VirtBase, symtab);
    }

    private static void WriteP2m(GuestPhysicalView view, DomainVirtualLayout v, uint[] p2m)
    {
        ulong gpa = v.P2mStart - v.VirtBase;
        for (int pfn = 0; pfn < p2m.Length; pfn++)
            view.Write32(gpa + (ulong)pfn * 4, p2m[pfn]);
    }

    /// <summary>shared_info (§7) and the M2P: M2P[mfn] = pfn for domain frames, 0x55555555 otherwise (§3).</summary>
    private static void WriteXenFrames(PhysicalMemory mem, MachineFrameMap frames)
    {
        SharedInfo.Initialise(mem, MachineFrameMap.SharedInfoMfn);
        ulong m2p = (ulong)MachineFrameMap.M2PFirstMfn << 12;
        for (uint mfn = 0; mfn < (ulong)frames.M2PFrameCount * 1024; mfn++)
            mem.Write32(m2p + (ulong)mfn * 4, frames.MfnToPfn(mfn));
    }

    private static PageTableFrame XenSlotL2(List<PageTableFrame> tables, DomainVirtualLayout v, bool pae)
    {
        if (!pae) return tables[0];
        // The L2 under L3 slot 3: the extra one (last L2), or the one for GB slot 3 of the range.
        int index = v.ExtraSlot3L2 ? (int)v.L2Frames : 1 + (int)(3 - (v.VirtBase >> 30));
        return tables[index];
    }
}
