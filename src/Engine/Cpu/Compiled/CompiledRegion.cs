using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// A hot block's compiled code and the cached blocks it was compiled from: <see cref="Members"/>[0]
/// is the head (the block the run loop enters), the others are blocks (of its page or others) that
/// the code can branch to without returning to the run loop (docs/compiled-tier.md, "Regions").
/// </summary>
internal sealed class CompiledRegion(CompiledCode code, Block[] members)
{
    public readonly CompiledCode Code = code;
    public readonly Block[] Members = members;

    /// <summary>The result of <see cref="Code"/>: which member ended the run and at which of its instructions.</summary>
    public static int Result(int member, int insn) => member << 16 | insn;

    public const int MaxBlocks = 12, MaxInsns = 96, ColdDivisor = 4;

    /// <summary>
    /// The head and the cached blocks reachable from it by direct branches, fall-through, returns
    /// to a call's next instruction and the last destinations of its indirect transfers
    /// (<see cref="BlockEmitter.DynamicSuccessors"/>), at most <see cref="MaxBlocks"/> blocks and
    /// <see cref="MaxInsns"/> instructions. A block of the head's page is taken as the run loop
    /// would find it there (the run loop checked the page's translation when it entered the head);
    /// a block of another page as the TLB maps that page for execution now
    /// (<see cref="X86Cpu.PeekCodeAddress"/>; a branch to it checks the mapping again at run time,
    /// <see cref="IsOtherPage"/>). Only blocks already cached are taken: forming a region decodes
    /// nothing, fills no TLB entry and sets no accessed bit. A successor joins only when the run
    /// loop entered it at least 1/<see cref="ColdDivisor"/> as often as the head
    /// (<see cref="Block.Hits"/>, counted until a block is compiled): rarely-run successors (error
    /// paths, a loop's exit) stay out, so a block is not compiled again into every region that
    /// could reach it (docs/compiled-tier.md, "Regions"). Control that reaches one leaves the
    /// region, as for any block outside it.
    /// </summary>
    public static Block[] Form(Block head, BlockCache cache, X86Cpu cpu)
    {
        var list = new List<Block> { head };
        int insns = head.Count, minHits = head.Hits / ColdDivisor;
        ulong page = head.Phys & ~0xFFFul;
        for (int i = 0; i < list.Count && list.Count < MaxBlocks; i++)
        {
            foreach (uint s in BlockEmitter.StaticSuccessors(list[i]).Concat(BlockEmitter.DynamicSuccessors(list[i])))
            {
                if (list.Count == MaxBlocks) break;
                if (list.Exists(b => b.Eip == s)) continue;
                ulong phys;
                if (!IsOtherPage(head, s)) phys = page + (ulong)PageOffset(head, s);
                else if (!cpu.PeekCodeAddress(s, out phys)) continue;
                Block? b = cache.Lookup(s, phys, head.Code32);
                if (b == null || b.Hits < minHits || insns + b.Count > MaxInsns) continue;
                list.Add(b);
                insns += b.Count;
            }
        }
        return list.ToArray();
    }

    /// <summary>
    /// The offset of eip's linear address from the start of the head's page (linear and physical
    /// page offsets agree, and a head block is found only under CS bases with the same offset).
    /// </summary>
    private static long PageOffset(Block head, uint eip) => (long)(head.Phys & 0xFFF) + ((long)eip - head.Eip);

    /// <summary>Per member: the indices of the members its indirect transfer goes to first (<see cref="BlockEmitter.DynamicSuccessors"/>).</summary>
    public static int[][] DynamicTargets(Block[] members) =>
        members.Select(b => BlockEmitter.DynamicSuccessors(b).Select(e => Array.FindIndex(members, x => x.Eip == e)).Where(m => m >= 0).ToArray()).ToArray();

    /// <summary>Whether eip lies outside the head's linear page: a branch there checks the TLB.</summary>
    public static bool IsOtherPage(Block head, uint eip) => PageOffset(head, eip) is < 0 or >= 0x1000;
}
