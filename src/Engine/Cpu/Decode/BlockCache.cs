using Iced.Intel;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu.Decode;

/// <summary>A run of decoded instructions from one physical page, ending at a control transfer.</summary>
public sealed class Block
{
    public DecodedInsn[] Insns = [];
    public int Count;
    public uint Eip;
    public uint EndEip;
    public ulong Phys;
    public bool Code32;
    public bool Valid = true;
    /// <summary>Unique per cached block (from 1); 0 for one-off blocks.</summary>
    public long Id;
    /// <summary>False for one-off blocks (an instruction crossing a page, interpreter mode).</summary>
    public bool Cached;
    /// <summary>
    /// The block ends with a near control transfer or falls through: nothing in it changes CS,
    /// CPL or paging, so its successors may be remembered (see <see cref="Successor"/>).
    /// </summary>
    public bool Chainable;
    /// <summary>Executions so far by the block-cache tier (counts up to the compile threshold).</summary>
    internal int Hits;
    /// <summary>
    /// The compiled code of the region this block heads (compiled tier), once it ran
    /// <see cref="X86Cpu.CompileThreshold"/> times; dropped when any block of the region is invalidated.
    /// </summary>
    internal Compiled.CompiledRegion? Compiled;
    /// <summary>Heads of the compiled regions whose code includes this block (docs/compiled-tier.md, "Regions").</summary>
    internal List<Block>? InRegions;

    // Two remembered successors (e.g. the taken and fall-through sides of a jcc), each valid
    // while the CPU's chain epoch (bumped on every TLB change) is the one it was linked under.
    private Block? _succ0, _succ1;
    private uint _succEip0, _succEip1;
    private ulong _epoch0, _epoch1;

    /// <summary>The cached block this one was last followed by at eip, if still valid under epoch.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal Block? Successor(uint eip, ulong epoch)
    {
        Block? n = _succ0;
        if (n != null && _succEip0 == eip && _epoch0 == epoch && n.Valid) return n;
        n = _succ1;
        if (n != null && _succEip1 == eip && _epoch1 == epoch && n.Valid) return n;
        return null;
    }

    internal void Link(Block next, ulong epoch)
    {
        if (_succ0 == null || _epoch0 != epoch || !_succ0.Valid || _succEip0 == next.Eip)
        {
            _succ0 = next; _succEip0 = next.Eip; _epoch0 = epoch;
        }
        else
        {
            _succ1 = next; _succEip1 = next.Eip; _epoch1 = epoch;
        }
    }
}

/// <summary>
/// Decoded blocks keyed by (EIP, physical address, code size), with a direct-mapped front cache.
/// Blocks are invalidated when bytes they were decoded from are written (self-modifying code):
/// the cache marks the 64-byte lines they occupy in <see cref="PhysicalMemory"/>'s code lines (the
/// one owner of code and dirty marks), which sends every write made through PhysicalMemory to a
/// code frame to <see cref="OnCodeWritten"/>, and keeps the CPU's store fast path off those lines,
/// so stores to data that shares a page with code stay on the fast path.
/// </summary>
public sealed class BlockCache : ICodeWriteObserver
{
    public const int MaxBlockInsns = 64;
    private const int FrontBits = 14;

    private readonly X86Cpu _cpu;
    private readonly Dictionary<ulong, Block> _map = new();
    private readonly Block?[] _front = new Block?[1 << FrontBits];
    private readonly Dictionary<uint, List<Block>> _byFrame = new();
    private readonly RamCodeReader _reader = new();
    private readonly DecodedInsn[] _scratch = new DecodedInsn[MaxBlockInsns];

    /// <summary>
    /// <see cref="Block.Id"/> of the cached block being executed (0: none), so a store into it
    /// ends it after the current instruction. An id rather than a reference: setting it once
    /// per block must not cost a GC write barrier.
    /// </summary>
    internal long Current;
    private long _nextId;

    public long BlocksDecoded { get; private set; }

    // One decoder per code size, reading through _reader (reset per build); Iced decoders keep
    // no state between instructions beyond IP, so reusing them avoids an allocation per build.
    private readonly Decoder _decoder16, _decoder32;
    // Uncached blocks (interpreter mode, single-step, a short CS limit) are run once and
    // dropped, so one scratch block serves them all.
    private readonly Block _oneOff = new() { Insns = new DecodedInsn[MaxBlockInsns] };

    internal BlockCache(X86Cpu cpu)
    {
        _cpu = cpu;
        _decoder16 = Decoder.Create(16, _reader);
        _decoder32 = Decoder.Create(32, _reader);
    }

    private static int FrontIndex(uint eip, ulong phys) =>
        (int)(((uint)phys ^ (eip * 0x9E3779B1u)) >> (32 - FrontBits));

    public Block? Lookup(uint eip, ulong phys, bool code32)
    {
        int h = FrontIndex(eip, phys);
        Block? b = _front[h];
        if (b != null && b.Eip == eip && b.Phys == phys && b.Code32 == code32 && b.Valid) return b;
        if (_map.TryGetValue(Key(eip, phys), out b) && b.Code32 == code32 && b.Valid)
        {
            _front[h] = b;
            return b;
        }
        return null;
    }

    private static ulong Key(uint eip, ulong phys) => ((ulong)eip << 32) ^ phys;

    /// <summary>Decodes a block at eip (physical phys). maxBytes limits it to the page and CS limit.</summary>
    public Block Build(uint eip, ulong phys, bool code32, int maxBytes, bool cache, int maxInsns = MaxBlockInsns)
    {
        _reader.Reset(_cpu.Memory.Ram, phys, maxBytes);
        var decoder = code32 ? _decoder32 : _decoder16;
        decoder.IP = eip;
        int n = 0;
        while (n < maxInsns)
        {
            decoder.Decode(out Instruction insn);
            if (insn.IsInvalid && decoder.LastError == DecoderError.NoMoreBytes) break;
            InsnDecoder.Fill(ref _scratch[n], insn);
            n++;
            if (insn.IsInvalid || insn.FlowControl != FlowControl.Next || HandlerTable.EndsBlock(insn)) break;
        }
        BlocksDecoded++;
        if (!cache || n == 0)
        {
            Block o = _oneOff;
            _scratch.AsSpan(0, n).CopyTo(o.Insns);
            o.Count = n; o.Eip = eip; o.Phys = phys; o.Code32 = code32; o.Valid = true; o.Cached = false; o.Chainable = false;
            o.EndEip = n == 0 ? eip : _scratch[n - 1].NextEip;
            return o;
        }
        var b = new Block
        {
            Insns = _scratch.AsSpan(0, n).ToArray(), Count = n, Eip = eip, Phys = phys, Code32 = code32,
            EndEip = _scratch[n - 1].NextEip, Cached = true, Id = ++_nextId,
        };
        b.Chainable = IsChainable(_scratch[n - 1].Insn);
        Insert(b);
        return b;
    }

    /// <summary>Decodes one instruction from a byte buffer (used for instructions that cross a page).</summary>
    /// <remarks>The result is a one-off block, valid until the next build.</remarks>
    public Block BuildFromBytes(uint eip, ulong phys, bool code32, byte[] bytes, int length)
    {
        _reader.Reset(bytes, 0, length);
        var decoder = code32 ? _decoder32 : _decoder16;
        decoder.IP = eip;
        decoder.Decode(out Instruction insn);
        Block b = _oneOff;
        InsnDecoder.Fill(ref b.Insns[0], insn);
        b.Count = 1; b.Eip = eip; b.Phys = phys; b.Code32 = code32; b.Valid = true; b.Cached = false; b.Chainable = false;
        b.EndEip = b.Insns[0].NextEip;
        return b;
    }

    /// <summary>Scratch for the bytes of an instruction that crosses a page (at most 15).</summary>
    internal readonly byte[] CrossBytes = new byte[15];

    /// <summary>Near jmp/jcc/call/ret/loop (direct or indirect) or plain fall-through: no change of CS, CPL or paging.</summary>
    private static bool IsChainable(in Instruction insn)
    {
        if (insn.IsInvalid || HandlerTable.EndsBlock(insn)) return false;
        switch (insn.FlowControl)
        {
            case FlowControl.Next:
                return true;
            case FlowControl.UnconditionalBranch:
            case FlowControl.ConditionalBranch:
            case FlowControl.Call:
                return insn.Op0Kind is OpKind.NearBranch16 or OpKind.NearBranch32;
            case FlowControl.IndirectBranch:
            case FlowControl.IndirectCall:
                return insn.Mnemonic is Mnemonic.Jmp or Mnemonic.Call
                       && (insn.Op0Kind == OpKind.Register
                           || (insn.Op0Kind == OpKind.Memory && insn.MemorySize is not (MemorySize.SegPtr16 or MemorySize.SegPtr32)));
            case FlowControl.Return:
                return insn.Mnemonic == Mnemonic.Ret;
            default:
                return false;
        }
    }

    private void Insert(Block b)
    {
        ulong key = Key(b.Eip, b.Phys);
        if (_map.TryGetValue(key, out var old)) Retire(old);
        _map[key] = b;
        _front[FrontIndex(b.Eip, b.Phys)] = b;
        uint frame = (uint)(b.Phys >> PhysicalMemory.PageShift);
        if (!_byFrame.TryGetValue(frame, out var list)) _byFrame[frame] = list = new List<Block>();
        list.Add(b);
        _cpu.Memory.AddCodeLines(frame, LineMask(b));
    }

    /// <summary>The 64-byte lines of its frame that block b was decoded from.</summary>
    private static ulong LineMask(Block b) =>
        PhysicalMemory.CodeLineMask((uint)(b.Phys & PhysicalMemory.PageMask), b.EndEip - b.Eip);

    public void OnCodeWritten(ulong addr, int len)
    {
        ulong end = addr + (ulong)len;
        for (uint frame = (uint)(addr >> PhysicalMemory.PageShift); ((ulong)frame << PhysicalMemory.PageShift) < end; frame++)
        {
            if (!_byFrame.TryGetValue(frame, out var list)) continue;
            for (int i = list.Count - 1; i >= 0; i--)
            {
                Block b = list[i];
                ulong bEnd = b.Phys + (b.EndEip - b.Eip);
                if (b.Phys >= end || bEnd <= addr) continue;
                Invalidate(b);
                list.RemoveAt(i);
            }
            ulong lines = 0;
            foreach (Block b in list) lines |= LineMask(b);
            if (list.Count == 0) _byFrame.Remove(frame);
            _cpu.Memory.SetCodeLines(frame, lines);
        }
    }

    private void Invalidate(Block b)
    {
        if (b.Id == Current || RunsInCurrentRegion(b)) _cpu.EndBlockAfterThisInstruction();
        Retire(b);
        ulong key = Key(b.Eip, b.Phys);
        if (_map.TryGetValue(key, out var cur) && ReferenceEquals(cur, b)) _map.Remove(key);
    }

    /// <summary>
    /// While a compiled region runs, <see cref="Current"/> is its head's id: a store into any of
    /// its blocks ends it after the storing instruction (the region may be about to run that block).
    /// </summary>
    private bool RunsInCurrentRegion(Block b)
    {
        if (b.InRegions == null || Current == 0) return false;
        foreach (var head in b.InRegions)
            if (head.Id == Current) return true;
        return false;
    }

    /// <summary>A block leaves the cache: it is never run again, nor is any compiled region that includes it.</summary>
    private static void Retire(Block b)
    {
        b.Valid = false;
        if (b.InRegions == null) return;
        foreach (var head in b.InRegions)
        {
            head.Compiled = null;
            head.Hits = 0; // compiled again (from the blocks then cached) once hot again
        }
        b.InRegions = null;
    }

    /// <summary>Drops every block (snapshot restore).</summary>
    public void Clear()
    {
        foreach (var b in _map.Values) b.Valid = false;
        _map.Clear();
        Array.Clear(_front);
        _cpu.Memory.ClearCodeLines();
        _byFrame.Clear();
    }

    private sealed class RamCodeReader : CodeReader
    {
        private byte[] _buf = [];
        private int _pos, _end;

        public void Reset(byte[] buf, ulong start, int count)
        {
            _buf = buf;
            _pos = (int)start;
            _end = (int)Math.Min((ulong)buf.Length, start + (ulong)count);
        }

        public override int ReadByte() => _pos < _end ? _buf[_pos++] : -1;
    }
}
