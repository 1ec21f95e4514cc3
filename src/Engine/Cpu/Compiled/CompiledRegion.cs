using Replayvisor.Engine.Cpu.Decode;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// A hot block's compiled code and the cached blocks it was compiled from: <see cref="Members"/>[0]
/// is the head (the block the run loop enters), the others are blocks of the same page that the
/// code can branch to without returning to the run loop (docs/compiled-tier.md, "Regions").
/// </summary>
internal sealed class CompiledRegion(CompiledCode code, Block[] members, int entry = 0)
{
    public readonly CompiledCode Code = code;
    public readonly Block[] Members = members;
    /// <summary>The member the block holding this region is (0: it heads the region; else it entered a region another head compiled, BlockCompiler.Enter).</summary>
    public readonly int Entry = entry;

    /// <summary>The result of <see cref="Code"/>: which member ended the run and at which of its instructions.</summary>
    public static int Result(int member, int insn) => member << 16 | insn;

    public const int MaxBlocks = 12, MaxInsns = 96, ColdDivisor = 4;

    /// <summary>
    /// The head and the cached blocks reachable from it by direct branches, fall-through and
    /// returns to a call's next instruction, all in the head's page (whose translation the run
    /// loop checked when it entered the head), at most <see cref="MaxBlocks"/> blocks and
    /// <see cref="MaxInsns"/> instructions. Only blocks already cached are taken: forming a region
    /// decodes nothing. A successor joins only when the run loop entered it at least
    /// 1/<see cref="ColdDivisor"/> as often as the head (<see cref="Block.Hits"/>, counted until a
    /// block is compiled): rarely-run successors (error paths, a loop's exit) stay out, so a block
    /// is not compiled again into every region that could reach it (docs/compiled-tier.md,
    /// "Regions"). Control that reaches one leaves the region, as for any block outside it.
    /// </summary>
    public static Block[] Form(Block head, BlockCache cache)
    {
        var list = new List<Block> { head };
        int insns = head.Count, minHits = head.Hits / ColdDivisor;
        for (int i = 0; i < list.Count && list.Count < MaxBlocks; i++)
        {
            foreach (uint s in BlockEmitter.StaticSuccessors(list[i]))
            {
                if (list.Count == MaxBlocks) break;
                if (list.Exists(b => b.Eip == s)) continue;
                Block? b = CachedInHeadPage(head, s, cache);
                if (b == null || b.Hits < minHits || insns + b.Count > MaxInsns) continue;
                list.Add(b);
                insns += b.Count;
            }
        }
        return list.ToArray();
    }

    /// <summary>The cached block at <paramref name="eip"/> when it lies in the head's page (linear and physical agree on the page offset), else null.</summary>
    public static Block? CachedInHeadPage(Block head, uint eip, BlockCache cache)
    {
        ulong pageOffset = head.Phys & 0xFFF;
        long off = (long)pageOffset + ((long)eip - head.Eip);
        return off is >= 0 and < 0x1000 ? cache.Lookup(eip, head.Phys - pageOffset + (ulong)off, head.Code32) : null;
    }
}
