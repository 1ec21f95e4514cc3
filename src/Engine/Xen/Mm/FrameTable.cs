using System.Runtime.CompilerServices;
using System.Buffers.Binary;
using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen.Mm;

/// <summary>Callbacks the frame table needs from the rest of the MMU model.</summary>
internal interface IPageTypeHooks
{
    /// <summary>Validates a frame whose type count went 0→1 (alloc_page_type); false = refused.</summary>
    bool Validate(uint mfn, PageType type, bool xenPrivate);

    /// <summary>Releases the refs a table's entries took (free_page_type), when its type count returns to 0.</summary>
    void Devalidate(uint mfn, PageType type, bool xenPrivate);

    /// <summary>
    /// A frame changes type at type count 0: stale TLB entries derived from its old use must go
    /// (Xen flushes on every type change, filtered by its tlbflush_timestamp; we always flush).
    /// </summary>
    void TypeChanged(PageType from, PageType to);
}

/// <summary>
/// The page type system of docs/xen-abi.md §10.1 in one place (Xen's page_info: count_info, type_info,
/// owner). Every MMU path takes and drops refs through here:
/// <list type="bullet">
/// <item>general refcount: every use (PTE mapping, CR3, GDT/LDT use, pin); granted only to the frame's owner;</item>
/// <item>type + type count: a frame has one type while the count is non-zero; the type may change only at count 0;</item>
/// <item>validation on the 0→1 type transition of a table/descriptor type, devalidation (page tables only) on →0;</item>
/// <item>pinned: one extra type ref held until unpin; "Xen-private" marks the PAE L2 under L3 slot 3.</item>
/// </list>
/// As in Xen, GDT/LDT pages stay validated at type count 0 (only page tables are devalidated).
/// </summary>
public sealed class FrameTable : IStateHashable
{
    private readonly FrameInfo[] _frames;
    private IPageTypeHooks? _hooks;
    /// <summary>
    /// The canonical encoding of every entry (<see cref="EntryBytes"/> each, mfn order), kept for the
    /// state hash, and a mark per entry changed since it was last encoded. Every change to an entry
    /// takes it through <see cref="Changing"/>, which marks it, so a clean entry's encoding is that
    /// of the entry (the default entry encodes as zeros: a new table starts encoded and clean).
    /// </summary>
    private readonly byte[] _encoded, _changed;

    internal FrameTable(uint frameCount)
    {
        _frames = new FrameInfo[frameCount];
        _encoded = new byte[checked((int)frameCount * EntryBytes)];
        _changed = new byte[frameCount];
    }

    /// <summary>The entry of <paramref name="mfn"/> to change: marked for the next state hash.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref FrameInfo Changing(ulong mfn)
    {
        ref FrameInfo f = ref _frames[mfn];
        _changed[mfn] = 1;
        return ref f;
    }

    internal IPageTypeHooks Hooks { set => _hooks = value; }

    public uint Count => (uint)_frames.Length;
    public bool IsValid(ulong mfn) => mfn < (ulong)_frames.Length;

    public FrameOwner OwnerOf(uint mfn) => IsValid(mfn) ? _frames[mfn].Owner : FrameOwner.Nobody;
    public int RefCount(uint mfn) => IsValid(mfn) ? _frames[mfn].RefCount : 0;
    public PageType TypeOf(uint mfn) => IsValid(mfn) ? _frames[mfn].Type : PageType.None;
    public int TypeCount(uint mfn) => IsValid(mfn) ? _frames[mfn].TypeCount : 0;
    public bool IsValidated(uint mfn) => IsValid(mfn) && _frames[mfn].Validated;
    public bool IsPinned(uint mfn) => IsValid(mfn) && _frames[mfn].Pinned;
    public bool IsXenPrivate(uint mfn) => IsValid(mfn) && _frames[mfn].XenPrivate;

    /// <summary>Assigns a frame to an owner with its allocation reference (Xen's PGC_allocated), so it never drops to 0.</summary>
    internal void Assign(uint mfn, FrameOwner owner)
    {
        ref FrameInfo f = ref Changing(mfn);
        f = default;
        f.Owner = owner;
        f.RefCount = 1;
    }

    /// <summary>get_page: a general ref, only for the frame's owner.</summary>
    internal bool GetPage(ulong mfn, FrameOwner who)
    {
        if (!IsValid(mfn) || who is FrameOwner.Nobody or FrameOwner.Xen) return false;
        ref FrameInfo f = ref Changing(mfn);
        if (f.Owner != who || f.RefCount == int.MaxValue) return false;
        f.RefCount++;
        return true;
    }

    internal void PutPage(uint mfn)
    {
        ref FrameInfo f = ref Changing(mfn);
        if (f.RefCount > 0) f.RefCount--;
    }

    /// <summary>get_page_type: takes a type ref, changing the type at count 0 and validating on 0→1.</summary>
    internal bool GetType(uint mfn, PageType type, bool xenPrivate = false)
    {
        if (!IsValid(mfn) || type == PageType.None) return false;
        ref FrameInfo f = ref Changing(mfn);
        if (f.TypeCount == 0)
        {
            if (f.Type != type || f.XenPrivate != xenPrivate)
            {
                if (f.Type != PageType.None) _hooks?.TypeChanged(f.Type, type);
                f = ref Changing(mfn);
                f.Type = type;
                f.XenPrivate = xenPrivate;
                f.Validated = type == PageType.Writable;
            }
        }
        else if (f.Type != type || f.XenPrivate != xenPrivate || !f.Validated || f.TypeCount == int.MaxValue)
            return false; // type conflict (or a recursive use of a table still being validated)
        f.TypeCount++;
        if (f.Validated) return true;
        bool ok = _hooks?.Validate(mfn, type, xenPrivate) ?? false;
        f = ref Changing(mfn);
        if (!ok)
        {
            // Xen: "no one else can get a reference. We hold the only ref." → type_info = 0.
            f.TypeCount = 0;
            f.Type = PageType.None;
            f.XenPrivate = false;
            f.Validated = false;
            return false;
        }
        f.Validated = true;
        return true;
    }

    /// <summary>put_page_type: drops a type ref; a page table whose count reaches 0 is devalidated.</summary>
    internal void PutType(uint mfn)
    {
        ref FrameInfo f = ref Changing(mfn);
        if (f.TypeCount == 0) return;
        if (--f.TypeCount == 0 && f.Validated && IsTableType(f.Type))
        {
            f.Validated = false;
            f.Pinned = false;
            _hooks?.Devalidate(mfn, f.Type, f.XenPrivate);
        }
    }

    internal bool GetPageAndType(ulong mfn, FrameOwner who, PageType type, bool xenPrivate = false)
    {
        if (!GetPage(mfn, who)) return false;
        if (GetType((uint)mfn, type, xenPrivate)) return true;
        PutPage((uint)mfn);
        return false;
    }

    internal void PutPageAndType(uint mfn)
    {
        PutType(mfn);
        PutPage(mfn);
    }

    /// <summary>get_linear_pagetable: one more type ref on an already validated table of exactly this level.</summary>
    internal bool GetLinearRef(uint mfn, PageType level)
    {
        ref FrameInfo f = ref Changing(mfn);
        if (f.Type != level || !f.Validated || f.TypeCount == 0 || f.TypeCount == int.MaxValue) return false;
        f.TypeCount++;
        return true;
    }

    /// <summary>Sets the pinned bit; false if it was already set.</summary>
    internal bool TrySetPinned(uint mfn)
    {
        ref FrameInfo f = ref Changing(mfn);
        if (f.Pinned) return false;
        f.Pinned = true;
        return true;
    }

    /// <summary>Clears the pinned bit; false if it was not set.</summary>
    internal bool TryClearPinned(uint mfn)
    {
        ref FrameInfo f = ref Changing(mfn);
        if (!f.Pinned) return false;
        f.Pinned = false;
        return true;
    }

    /// <summary>A copy of every frame's page_info, mfn order.</summary>
    public FrameInfo[] Snapshot() => (FrameInfo[])_frames.Clone();

    /// <summary>Restores every frame's page_info from <see cref="Snapshot"/>.</summary>
    public void Restore(FrameInfo[] frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.Length != _frames.Length) throw new ArgumentException($"expected {_frames.Length} frames", nameof(frames));
        frames.CopyTo(_frames, 0);
        Array.Fill(_changed, (byte)1);
    }

    /// <summary>Bytes of one entry's canonical encoding: i32 RefCount, i32 TypeCount, u8 Type, u8 Owner, u8 flags.</summary>
    private const int EntryBytes = 11;

    /// <summary>Every frame in mfn order: counts, type, owner and the validated/pinned/Xen-private bits.</summary>
    // Full optimisation from the first call: a recording hashes only at checkpoints, too rarely for tiered JIT to reach this loop.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("frames");
        w.U32(Count);
        // Only the entries changed since the last hash are encoded again (found a vector at a time),
        // a run of changed entries in one loop: the first hash of a recording finds nearly every
        // entry changed (the domain builder gave every frame its owner), and a search per entry cost
        // more than the encoding (perf, ticker recordings).
        byte[] changed = _changed;
        int mfn = 0;
        while (true)
        {
            int next = changed.AsSpan(mfn).IndexOfAnyExcept((byte)0);
            if (next < 0) break;
            mfn += next;
            do
            {
                Encode(in _frames[mfn], _encoded.AsSpan(mfn * EntryBytes, EntryBytes));
                changed[mfn] = 0;
            } while (++mfn < changed.Length && changed[mfn] != 0);
        }
        w.RawInPlace(_encoded);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Encode(in FrameInfo f, Span<byte> b)
    {
        BinaryPrimitives.WriteInt32LittleEndian(b, f.RefCount);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], f.TypeCount);
        b[8] = (byte)f.Type;
        b[9] = (byte)f.Owner;
        b[10] = (byte)((f.Validated ? 1 : 0) | (f.Pinned ? 2 : 0) | (f.XenPrivate ? 4 : 0));
    }

    /// <summary>Entries whose kept encoding differs from their entry's although they are not marked changed: a change that bypassed <see cref="Changing"/> (for tests).</summary>
    internal List<uint> StaleCleanEntries()
    {
        var stale = new List<uint>();
        Span<byte> fresh = stackalloc byte[EntryBytes];
        for (uint mfn = 0; mfn < Count; mfn++)
        {
            Encode(_frames[mfn], fresh);
            if (_changed[mfn] == 0 && !fresh.SequenceEqual(_encoded.AsSpan((int)mfn * EntryBytes, EntryBytes))) stale.Add(mfn);
        }
        return stale;
    }

    public static bool IsTableType(PageType t) => t is PageType.L1 or PageType.L2 or PageType.L3 or PageType.L4;
}

/// <summary>One frame's page_info (plain data: snapshots hold arrays of it).</summary>
public struct FrameInfo
{
    public int RefCount;
    public int TypeCount;
    public PageType Type;
    public FrameOwner Owner;
    public bool Validated, Pinned, XenPrivate;
}
