using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// copy_from_guest / copy_to_guest: hypercall access to guest virtual memory through the current
/// page tables with the guest kernel's rights. Addresses at or above HYPERVISOR_VIRT_START, or
/// that fault, give false (the caller returns -EFAULT, docs/xen-abi.md §2). A fault here never reaches
/// the guest: the CPU's pending fault is cleared.
/// </summary>
public sealed class GuestMemory
{
    private readonly X86Cpu _cpu;
    private readonly uint _hypervisorVirtStart;

    public GuestMemory(X86Cpu cpu, uint hypervisorVirtStart)
    {
        _cpu = cpu;
        _hypervisorVirtStart = hypervisorVirtStart;
    }

    private bool InGuestRange(uint va, int len) => len >= 0 && (ulong)va + (ulong)len <= _hypervisorVirtStart;

    /// <summary>When set, every successful <see cref="TryWrite"/> is recorded (the hypercall trace's guest writes).</summary>
    public List<GuestWriteRecord>? WriteLog { get; set; }

    /// <summary>
    /// When set, told of every range read here (a debugger's read watchpoints, docs/time-travel.md
    /// "Stepping"); it changes nothing the run computes. Null in recordings and plain replays.
    /// </summary>
    public IGuestReadWatch? ReadWatch { get; set; }

    /// <summary>The highest guest address + 1 that hypercalls may touch (HYPERVISOR_VIRT_START).</summary>
    public uint Limit => _hypervisorVirtStart;

    public bool TryRead(uint va, Span<byte> into)
    {
        if (!InGuestRange(va, into.Length)) return false;
        for (int i = 0; i < into.Length;)
        {
            uint a = va + (uint)i;
            if (!_cpu.Translate(a, Access.Read, false, out ulong pa)) { _cpu.ClearFault(); return false; }
            int n = Math.Min(into.Length - i, 0x1000 - (int)(a & 0xFFF));
            _cpu.Memory.ReadBytes(pa, into.Slice(i, n));
            ReadWatch?.Read(a, n);
            i += n;
        }
        return true;
    }

    public bool TryWrite(uint va, ReadOnlySpan<byte> data)
    {
        if (!InGuestRange(va, data.Length)) return false;
        // Translate every page first so a failing write changes nothing.
        for (int i = 0; i < data.Length;)
        {
            uint a = va + (uint)i;
            if (!_cpu.Translate(a, Access.Write, false, out _)) { _cpu.ClearFault(); return false; }
            i += 0x1000 - (int)(a & 0xFFF);
        }
        for (int i = 0; i < data.Length;)
        {
            uint a = va + (uint)i;
            _cpu.Translate(a, Access.Write, false, out ulong pa);
            int n = Math.Min(data.Length - i, 0x1000 - (int)(a & 0xFFF));
            _cpu.Memory.WriteBytes(pa, data.Slice(i, n));
            i += n;
        }
        WriteLog?.Add(new GuestWriteRecord(va, data.ToArray()));
        return true;
    }

    public bool TryRead32(uint va, out uint v)
    {
        // Within one page of RAM (nearly always): one translation and one read, as TryRead would do them.
        if ((va & 0xFFF) <= 0xFFC && InGuestRange(va, 4))
        {
            if (!_cpu.Translate(va, Access.Read, false, out ulong pa)) { _cpu.ClearFault(); v = 0; return false; }
            if (_cpu.Memory.Contains(pa, 4))
            {
                v = _cpu.Memory.Read32(pa);
                ReadWatch?.Read(va, 4);
                return true;
            }
        }
        Span<byte> b = stackalloc byte[4];
        bool ok = TryRead(va, b);
        v = ok ? BitConverter.ToUInt32(b) : 0;
        return ok;
    }

    public bool TryRead64(uint va, out ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        bool ok = TryRead(va, b);
        v = ok ? BitConverter.ToUInt64(b) : 0;
        return ok;
    }

    public bool TryWrite32(uint va, uint v)
    {
        Span<byte> b = stackalloc byte[4];
        BitConverter.TryWriteBytes(b, v);
        return TryWrite(va, b);
    }

    public bool TryWrite64(uint va, ulong v)
    {
        Span<byte> b = stackalloc byte[8];
        BitConverter.TryWriteBytes(b, v);
        return TryWrite(va, b);
    }
}
