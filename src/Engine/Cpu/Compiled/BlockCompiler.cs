using System.Collections.Concurrent;
using System.Reflection.Emit;
using System.Text;
using Replayvisor.Engine.Cpu.Decode;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// A compiled region (<see cref="CompiledRegion"/>). Returns <see cref="CompiledRegion.Result"/>(k, i):
/// member k's <see cref="Block.Count"/> when the run ended after member k retired every
/// instruction (registers, flags, EIP and <see cref="X86Cpu.Icount"/> are stored back); i &lt;
/// Count when member k's instruction i ended it with <see cref="X86Cpu.Exit"/> set: a fault
/// (instructions 0..i-1 retired, i did not) or an exit after i completed (the run loop counts it,
/// as for the block cache); -1 when an entry assumption (a 32-bit stack segment) does not hold and
/// nothing ran. Branches between members are taken only while <paramref name="chainEpoch"/> is the
/// CPU's <see cref="X86Cpu.ChainEpoch"/> (the caller passes ulong.MaxValue to forbid them) and the
/// next member fits the instruction budget. The run starts at member <paramref name="entry"/>
/// (a block bound to a region that another head compiled, <see cref="BlockCompiler.Enter"/>). The delegate is bound to its CPU (the DynamicMethod's
/// first parameter): a call through a delegate closed over its first argument passes the arguments
/// as they are, where an open static one goes through a shuffle thunk on every region entry.
/// </summary>
internal delegate int CompiledCode(Block[] members, ulong chainEpoch, int entry);

/// <summary>
/// The compiled tier: translates a hot block, with the blocks of its page it branches to, to IL (a
/// DynamicMethod) that the .NET JIT turns into machine code. Guest registers live in IL locals
/// across the region, flags stay lazy as operands in locals and reach the CPU only at exits, and
/// loads and stores take an inlined TLB-hit path. Instructions it does not translate run their
/// interpreter handler from inside the compiled code. See docs/compiled-tier.md.
/// </summary>
public static class BlockCompiler
{
    // Compiled code is a function of its blocks' bytes, addresses and code size only (every
    // constant it holds comes from decoding them), so machines in one process share it: a
    // replay after a recording, a restored snapshot or a second run skips the compile.
    private static readonly ConcurrentDictionary<string, (DynamicMethod Method, int IlBytes)> Shared = new();
    private const int MaxShared = 1 << 16;
    // The member addresses of every region in Shared, by its head's key (its address and bytes):
    // which regions Reuse may find for a block before its own region is formed.
    private static readonly ConcurrentDictionary<string, uint[][]> RegionsByHead = new();

    /// <summary>
    /// Gives a cached block the compiled code of the region it heads (<see cref="Block.Compiled"/>),
    /// from the process-wide cache or by compiling it. Returns the IL bytes emitted (0 when the
    /// code was reused) and the number of blocks in the region.
    /// </summary>
    public static (int IlBytes, int Blocks) Compile(Block head, BlockCache cache, PhysicalMemory memory, X86Cpu cpu)
    {
        Block[] members = CompiledRegion.Form(head, cache);
        string key = Key(members, memory);
        if (Shared.TryGetValue(key, out var hit))
        {
            Install(head, members, Bind(hit.Method, cpu));
            return (0, members.Length);
        }
        var method = Emit(members, out int ilBytes);
        Install(head, members, Bind(method, cpu));
        if (Shared.Count < MaxShared && Shared.TryAdd(key, (method, ilBytes)))
        {
            uint[] eips = members.Select(m => m.Eip).ToArray();
            RegionsByHead.AddOrUpdate(Key([head], memory), [eips], (_, known) => [.. known, eips]);
        }
        return (ilBytes, members.Length);
    }

    /// <summary>
    /// Gives a cached block the code of a region it heads that some machine of this process compiled,
    /// when every block of that region is cached here with the same address and bytes (compiled code
    /// is a function of those alone, so the region's code runs here exactly as it ran there). Which
    /// blocks join a region is chosen from how often each ran when it was compiled
    /// (<see cref="CompiledRegion.Form"/>); a region reused here may hold a block this machine has run
    /// less often, which changes how fast it runs, never what it does. Returns the blocks of the
    /// region bound, 0 when there was none.
    /// </summary>
    public static int Reuse(Block head, BlockCache cache, PhysicalMemory memory, X86Cpu cpu)
    {
        if (!RegionsByHead.TryGetValue(Key([head], memory), out var regions)) return 0;
        foreach (uint[] eips in regions)
        {
            if (CachedHere(head, eips, cache) is not { } members || !Shared.TryGetValue(Key(members, memory), out var hit)) continue;
            Install(head, members, Bind(hit.Method, cpu));
            return members.Length;
        }
        return 0;
    }

    /// <summary>The blocks at <paramref name="eips"/> in the head's page (as <see cref="CompiledRegion.Form"/> takes them), if all are cached.</summary>
    private static Block[]? CachedHere(Block head, uint[] eips, BlockCache cache)
    {
        var members = new Block[eips.Length];
        members[0] = head;
        for (int i = 1; i < eips.Length; i++)
        {
            if (CompiledRegion.CachedInHeadPage(head, eips[i], cache) is not { } b) return null;
            members[i] = b;
        }
        return members;
    }

    /// <summary>Binds a region's code to its head; each member remembers the regions it is in (for invalidation).</summary>
    private static void Install(Block head, Block[] members, CompiledCode code, int entry = 0)
    {
        foreach (var m in members)
        {
            m.InRegions ??= new List<Block>(1);
            if (!m.InRegions.Contains(head)) m.InRegions.Add(head);
        }
        head.Compiled = new CompiledRegion(code, members, entry);
    }

    /// <summary>
    /// Gives a cached block that is a member of a region this machine already runs (compiled or
    /// reused for another head) that region's code, entered at the block's own start: a loop's
    /// blocks are often members of the region of the block that first got hot, and compiling each
    /// of them again as the head of a region of its own cost the .NET JIT as much again. The code
    /// is the same that runs when the region branches to that member (every member starts in the
    /// same state), so the block runs exactly as in a region of its own; only which blocks can be
    /// reached without returning to the run loop differs. Returns the region's blocks, 0 when the
    /// block is in no region.
    /// </summary>
    public static int Enter(Block block)
    {
        if (block.InRegions == null) return 0;
        foreach (var head in block.InRegions)
        {
            if (head == block || head.Compiled is not { Entry: 0 } region) continue;
            int k = Array.IndexOf(region.Members, block);
            if (k <= 0) continue;
            Install(block, region.Members, region.Code, k);
            return region.Members.Length;
        }
        return 0;
    }

    /// <summary>
    /// Empties the process-wide cache of compiled code, so that the next run compiles (emits and
    /// JIT-compiles) every region again: how `bench --guest` times compiling apart from the .NET
    /// JIT's one-time work on the compiler itself. Machines keep the code they already hold.
    /// </summary>
    public static void ForgetSharedCode()
    {
        Shared.Clear();
        RegionsByHead.Clear();
    }

    private static string Key(Block[] members, PhysicalMemory memory)
    {
        var sb = new StringBuilder(members[0].Code32 ? "d" : "w");
        Span<byte> bytes = stackalloc byte[0x1000];
        foreach (var b in members)
        {
            int length = (int)(b.EndEip - b.Eip);
            memory.ReadBytes(b.Phys, bytes[..length]);
            sb.Append(b.Eip.ToString("x8")).Append(':').Append(Convert.ToHexString(bytes[..length])).Append(';');
        }
        return sb.ToString();
    }

    private static CompiledCode Bind(DynamicMethod method, X86Cpu cpu) => (CompiledCode)method.CreateDelegate(typeof(CompiledCode), cpu);

    private static DynamicMethod Emit(Block[] members, out int ilBytes)
    {
        // The registers the region's translations write are stored at its exits; should the
        // emitter find one more, it emits again storing all of them.
        var use = BlockEmitter.Scan(members);
        var code = TryEmit(members, use, use.Written, out ilBytes, out int seen);
        if ((seen & ~use.Written) == 0) return code;
        return TryEmit(members, use, 0xFF, out ilBytes, out _);
    }

    private static DynamicMethod TryEmit(Block[] members, RegionUse use, int written, out int ilBytes, out int seen)
    {
        var dm = new DynamicMethod($"region_{members[0].Eip:x8}", typeof(int), [typeof(X86Cpu), typeof(Block[]), typeof(ulong), typeof(int)], typeof(X86Cpu), skipVisibility: true);
        var il = dm.GetILGenerator();
        var e = new BlockEmitter(il, members, use, written);
        e.Emit();
        seen = e.RegistersStored;
        ilBytes = il.ILOffset;
        return dm;
    }
}
