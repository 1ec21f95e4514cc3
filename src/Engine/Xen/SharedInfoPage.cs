using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Xen;

/// <summary>
/// Xen's view of the domain's shared_info machine frame (docs/xen-abi.md §4.2, §4.3), written through
/// physical memory (the guest maps the same frame wherever it likes).
/// </summary>
public sealed class SharedInfoPage(PhysicalMemory memory, uint mfn)
{
    private readonly ulong _base = (ulong)mfn << 12;

    public uint Mfn => mfn;

    /// <summary>vcpu_info slots in shared_info (XEN_LEGACY_MAX_VCPUS).</summary>
    public int MaxVcpuInfoSlots => SharedInfo.MaxVirtCpus;

    /// <summary>Machine addresses of vcpu_info areas moved by VCPUOP_register_vcpu_info (0 = the slot in shared_info).</summary>
    private readonly ulong[] _moved = new ulong[SharedInfo.MaxVirtCpus];

    private ulong Vcpu(int v) => _moved[v] != 0 ? _moved[v] : _base + (ulong)(v * SharedInfo.VcpuInfoSize);

    /// <summary>The machine address of vCPU <paramref name="v"/>'s vcpu_info (moved or in shared_info).</summary>
    public ulong VcpuInfoAddress(int v) => Vcpu(v);

    /// <summary>vCPU <paramref name="v"/>'s vcpu_info has been moved out of shared_info.</summary>
    public bool IsMoved(int v) => _moved[v] != 0;

    /// <summary>
    /// map_guest_area's populate (vcpu_info_populate) for a vcpu_info moved to machine address
    /// <paramref name="maddr"/>: the old contents are copied there, and from now on Xen reads and
    /// writes only the new place.
    /// </summary>
    public void MoveVcpuInfo(int v, ulong maddr)
    {
        Span<byte> info = stackalloc byte[SharedInfo.VcpuInfoSize];
        ulong from = Vcpu(v);
        for (int i = 0; i < info.Length; i++) info[i] = memory.Read8(from + (ulong)i);
        for (int i = 0; i < info.Length; i++) memory.Write8(maddr + (ulong)i, info[i]);
        _moved[v] = maddr;
    }

    /// <summary>The moved vcpu_info addresses, vCPU order (plain data for a snapshot).</summary>
    public ulong[] SnapshotMoved() => (ulong[])_moved.Clone();

    public void RestoreMoved(ulong[] moved)
    {
        ArgumentNullException.ThrowIfNull(moved);
        moved.CopyTo(_moved, 0);
    }

    public byte UpcallPending(int v) => memory.Read8(Vcpu(v) + SharedInfo.VcpuUpcallPending);
    public void SetUpcallPending(int v, byte value) => memory.Write8(Vcpu(v) + SharedInfo.VcpuUpcallPending, value);
    public byte UpcallMask(int v) => memory.Read8(Vcpu(v) + SharedInfo.VcpuUpcallMask);
    public void SetUpcallMask(int v, byte value) => memory.Write8(Vcpu(v) + SharedInfo.VcpuUpcallMask, value);
    public uint PendingSel(int v) => memory.Read32(Vcpu(v) + SharedInfo.VcpuPendingSel);
    public void SetPendingSel(int v, uint value) => memory.Write32(Vcpu(v) + SharedInfo.VcpuPendingSel, value);
    public void SetCr2(int v, uint cr2) => memory.Write32(Vcpu(v) + SharedInfo.VcpuCr2, cr2);
    public uint Cr2(int v) => memory.Read32(Vcpu(v) + SharedInfo.VcpuCr2);

    public bool TestPending(uint port) => TestBit(SharedInfo.EvtchnPending, port);
    public bool TestMasked(uint port) => TestBit(SharedInfo.EvtchnMask, port);
    /// <summary>Sets the pending bit; returns its old value (test_and_set_bit).</summary>
    public bool TestAndSetPending(uint port) => TestAndChange(SharedInfo.EvtchnPending, port, true);
    public bool TestAndClearMask(uint port) => TestAndChange(SharedInfo.EvtchnMask, port, false);
    public void ClearPending(uint port) => TestAndChange(SharedInfo.EvtchnPending, port, false);
    public uint PendingWord(int w) => memory.Read32(_base + SharedInfo.EvtchnPending + (ulong)(w * 4));
    public uint MaskWord(int w) => memory.Read32(_base + SharedInfo.EvtchnMask + (ulong)(w * 4));

    /// <summary>
    /// Writes the ports below <paramref name="ports"/> (a multiple of 256) whose evtchn_pending bit
    /// is set and evtchn_mask bit clear to <paramref name="into"/> (room for <paramref name="ports"/>),
    /// in port order, and returns how many: the same ports as testing <see cref="PendingWord"/> and
    /// <see cref="MaskWord"/> word by word. Read 512 or 256 bits at a time straight from the frame;
    /// within a block only the bytes the vector compare found non-zero are looked at (the recorder
    /// asks at every upcall, and usually one port is pending).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // at every recorded upcall (a plain run never scans)
    public int PendingUnmasked(Span<uint> into, int ports)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(into.Length, ports, nameof(into));
        var page = memory.FrameBytes(mfn);
        var pending = page.Slice(SharedInfo.EvtchnPending, ports / 8);
        var mask = page.Slice(SharedInfo.EvtchnMask, ports / 8);
        int found = 0, block = 0;
        // 512 ports at a time where the CPU has 512-bit vectors (the 32-bit ABI's 1,024 ports: two compares), then 256.
        if (Vector512.IsHardwareAccelerated)
        {
            for (; block + 64 <= pending.Length; block += 64)
            {
                var live = Vector512.Create(pending.Slice(block, 64)) & ~Vector512.Create(mask.Slice(block, 64));
                ulong bytes = ~Vector512.Equals(live, Vector512<byte>.Zero).ExtractMostSignificantBits();
                if (bytes != 0) found = Collect(pending, mask, block, bytes, into, found);
            }
        }
        for (; block < pending.Length; block += 32)
        {
            var live = Vector256.Create(pending.Slice(block, 32)) & ~Vector256.Create(mask.Slice(block, 32));
            uint bytes = ~Vector256.Equals(live, Vector256<byte>.Zero).ExtractMostSignificantBits();
            if (bytes != 0) found = Collect(pending, mask, block, bytes, into, found);
        }
        return found;
    }

    /// <summary>The ports of the bytes at <paramref name="block"/> + the set bits of <paramref name="bytes"/>, in port order, written from <paramref name="found"/> on.</summary>
    private static int Collect(ReadOnlySpan<byte> pending, ReadOnlySpan<byte> mask, int block, ulong bytes, Span<uint> into, int found)
    {
        do
        {
            int at = block + BitOperations.TrailingZeroCount(bytes);
            uint bits = (uint)(pending[at] & ~mask[at]);
            do
            {
                into[found++] = (uint)(at * 8 + BitOperations.TrailingZeroCount(bits));
                bits &= bits - 1;
            } while (bits != 0);
            bytes &= bytes - 1;
        } while (bytes != 0);
        return found;
    }

    /// <summary>Sets bit <paramref name="bit"/> of evtchn_pending_sel; returns its old value.</summary>
    public bool TestAndSetSel(int v, int bit)
    {
        uint sel = PendingSel(v);
        uint m = 1u << bit;
        if ((sel & m) != 0) return true;
        SetPendingSel(v, sel | m);
        return false;
    }

    private bool TestBit(int area, uint port) =>
        (memory.Read32(_base + (ulong)area + (port >> 5) * 4) & (1u << (int)(port & 31))) != 0;

    private bool TestAndChange(int area, uint port, bool set)
    {
        ulong a = _base + (ulong)area + (port >> 5) * 4;
        uint w = memory.Read32(a);
        uint m = 1u << (int)(port & 31);
        bool old = (w & m) != 0;
        uint nw = set ? w | m : w & ~m;
        if (nw != w) memory.Write32(a, nw);
        return old;
    }

    /// <summary>
    /// vcpu_time_info update with the version protocol (§9): version := (version+1)|1, fields, version+1.
    /// </summary>
    public void WriteTime(int v, ulong tsc, ulong systemNs, uint mul, sbyte shift)
    {
        ulong t = Vcpu(v) + SharedInfo.VcpuTime;
        uint version = memory.Read32(t);
        memory.Write32(t, (version + 1) | 1);
        memory.Write64(t + 0x08, tsc);
        memory.Write64(t + 0x10, systemNs);
        memory.Write32(t + 0x18, mul);
        memory.Write8(t + 0x1C, (byte)shift);
        memory.Write32(t, ((version + 1) | 1) + 1);
    }

    public uint TimeVersion(int v) => memory.Read32(Vcpu(v) + SharedInfo.VcpuTime);

    /// <summary>Wallclock (UTC at system time 0) under wc_version (§9).</summary>
    public void WriteWallclock(uint sec, uint nsec)
    {
        uint version = memory.Read32(_base + SharedInfo.WcVersion);
        memory.Write32(_base + SharedInfo.WcVersion, (version + 1) | 1);
        memory.Write32(_base + SharedInfo.WcSec, sec);
        memory.Write32(_base + SharedInfo.WcNsec, nsec);
        memory.Write32(_base + SharedInfo.WcVersion, ((version + 1) | 1) + 1);
    }

    public void WriteMaxPfn(uint maxPfn) => memory.Write32(_base + SharedInfo.ArchMaxPfn, maxPfn);
}
