using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Engine.Xen;

/// <summary>Hypercall entry (entry.S "hypercall"): number in EAX, arguments in EBX..EBP, result in EAX (§1).</summary>
public sealed partial class Hypervisor
{
    private readonly List<uint> _grantFrames = [];

    internal bool InMulticall { get; set; }
    internal List<MulticallResult> MulticallResults { get; } = [];
    public IReadOnlyList<uint> GrantFrames => _grantFrames;

    private void Hypercall()
    {
        var c = Cpu;
        int nr = (int)c.Eax;
        var args = new HypercallArgs(c.Ebx, c.Ecx, c.Edx, c.Esi, c.Edi, c.Ebp);
        List<GuestWriteRecord>? writes = Observer != null ? [] : null;
        Guest.WriteLog = writes;
        MulticallResults.Clear();
        long result = Call(nr, args);
        Guest.WriteLog = null;
        c.Eax = (uint)result;
        Observer?.OnHypercall(c.Icount, nr, args, result,
            nr == 13 ? System.Runtime.InteropServices.CollectionsMarshal.AsSpan(MulticallResults) : default,
            (IReadOnlyList<GuestWriteRecord>?)writes ?? []);
    }

    /// <summary>Dispatches one hypercall (also each multicall entry) through the table.</summary>
    internal long Call(int nr, in HypercallArgs args)
    {
        var spec = (uint)nr < HypercallTable.NrHypercalls ? _table[nr] : null;
        if (spec == null)
        {
            Stats.UnknownHypercalls++;
            return -Errno.ENOSYS;
        }
        Stats.HypercallsByNumber[nr]++;
        return spec.Handler(this, args);
    }

    /// <summary>gnttab_grow_table: Xen-owned frames shared with the guest (it maps them by mfn).</summary>
    internal bool GrowGrantTable(uint frames)
    {
        while (_grantFrames.Count < frames)
        {
            uint mfn = Mm.AllocXenFrame();
            if (mfn == 0) return false;
            Cpu.Memory.ClearFrame(mfn);
            _grantFrames.Add(mfn);
        }
        return true;
    }
}
