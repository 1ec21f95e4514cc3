namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// mod_l1_entry / mod_l2_entry / mod_l3_entry (Xen 3.1 mm.c): validate the new entry at the
/// table's level, take its refs, store it, then drop the old entry's refs. The fast path (same
/// frame and same P/RW bits) stores without touching refs.
/// </summary>
internal sealed class EntryUpdates
{
    private const ulong AccessedDirty = Pte.A | Pte.D;
    private readonly PagingFormat _fmt;
    private readonly PageTableRules _rules;
    private readonly IMmContext _ctx;

    public EntryUpdates(PagingFormat fmt, PageTableRules rules, IMmContext ctx)
    {
        _fmt = fmt;
        _rules = rules;
        _ctx = ctx;
    }

    private static ulong PreserveAd(ulong oldE, ulong newE, bool preserve) =>
        preserve ? (newE & ~AccessedDirty) | (oldE & AccessedDirty) : newE;

    public bool ModL1(uint table, int index, ulong nl1e, FrameOwner foreign, bool preserveAd = false)
    {
        ulong ol1e = _fmt.Read(table, index);
        nl1e = PreserveAd(ol1e, nl1e, preserveAd);
        if ((nl1e & Pte.P) != 0)
        {
            if ((nl1e & _fmt.L1Disallow) != 0) return false;
            if (!_fmt.Changed(ol1e, nl1e, Pte.P | Pte.RW))
            {
                _fmt.Write(table, index, nl1e);
                return true;
            }
            if (!_rules.GetFromL1e(nl1e, foreign)) return false;
        }
        _fmt.Write(table, index, nl1e);
        _rules.PutFromL1e(ol1e);
        return true;
    }

    public bool ModL2(uint table, int index, ulong nl2e, bool tableXenPrivate, bool preserveAd = false)
    {
        if (!_rules.IsGuestL2Slot(index, tableXenPrivate)) return false; // Xen-private slots
        ulong ol2e = _fmt.Read(table, index);
        nl2e = PreserveAd(ol2e, nl2e, preserveAd);
        if ((nl2e & Pte.P) != 0)
        {
            if ((nl2e & _fmt.L2Disallow) != 0) return false;
            // Xen 3.1 compares only P here; RW is compared too so a read-only linear entry can
            // never be turned writable through the fast path.
            if (!_fmt.Changed(ol2e, nl2e, Pte.P | Pte.RW))
            {
                _fmt.Write(table, index, nl2e);
                return true;
            }
            if (!_rules.GetFromL2e(nl2e, table)) return false;
        }
        _fmt.Write(table, index, nl2e);
        _rules.PutFromL2e(ol2e, table);
        return true;
    }

    public bool ModL3(uint table, int index, ulong nl3e, bool preserveAd = false)
    {
        if (index >= 3) return false; // slot 3 holds the Xen mappings: never updated after validation
        ulong ol3e = _fmt.Read(table, index);
        nl3e = PreserveAd(ol3e, nl3e, preserveAd);
        if ((nl3e & Pte.P) != 0)
        {
            if ((nl3e & _fmt.L3Disallow) != 0) return false;
            if (!_fmt.Changed(ol3e, nl3e, Pte.P))
            {
                _fmt.Write(table, index, nl3e);
                _ctx.FlushTlb();
                return true;
            }
            if (!_rules.GetFromL3e(nl3e, table)) return false;
        }
        _fmt.Write(table, index, nl3e);
        _ctx.FlushTlb(); // pae_flush_pgd: the PDPTEs of an L3 in use changed
        _rules.PutFromL3e(ol3e, table);
        return true;
    }
}
