using System.Collections.Concurrent;
using System.Reflection.Emit;
using Replayvisor.Engine.Cpu.Decode;
using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Cpu.Compiled;

/// <summary>
/// A compiled block. Returns <see cref="Block.Count"/> when every instruction retired (registers,
/// flags, EIP and <see cref="X86Cpu.Icount"/> are stored back); i &lt; Count when instruction i
/// ended the block with <see cref="X86Cpu.Exit"/> set: a fault (instructions 0..i-1 retired, i
/// did not) or an exit after i completed (the run loop counts it, as for the block cache); -1
/// when an entry assumption (a 32-bit stack segment) does not hold and nothing ran.
/// </summary>
internal delegate int CompiledCode(X86Cpu cpu, DecodedInsn[] insns);

/// <summary>
/// The compiled tier: translates a hot block's decoded instructions to IL (a DynamicMethod)
/// that the .NET JIT turns into machine code. Guest registers live in IL locals inside the
/// block, flags stay lazy as operands in locals and reach the CPU only at exits, and loads and
/// stores take an inlined TLB-hit path. Instructions it does not translate run their
/// interpreter handler from inside the compiled block. See docs/compiled-tier.md.
/// </summary>
public static class BlockCompiler
{
    // Compiled code is a function of the block's bytes, address and code size only (every
    // constant it holds comes from decoding them), so machines in one process share it: a
    // replay after a recording, a restored snapshot or a second run skips the compile.
    private static readonly ConcurrentDictionary<string, (CompiledCode Code, int IlBytes)> Shared = new();
    private const int MaxShared = 1 << 16;

    /// <summary>
    /// Gives a cached block compiled code (<see cref="Block.Compiled"/>), from the process-wide
    /// cache or by compiling it. Returns the IL bytes emitted, 0 when the code was reused.
    /// </summary>
    public static int Compile(Block b, PhysicalMemory memory)
    {
        int length = (int)(b.EndEip - b.Eip);
        Span<byte> bytes = stackalloc byte[length];
        memory.ReadBytes(b.Phys, bytes);
        string key = $"{b.Eip:x8}{(b.Code32 ? 'd' : 'w')}{Convert.ToHexString(bytes)}";
        if (Shared.TryGetValue(key, out var hit))
        {
            b.Compiled = hit.Code;
            return 0;
        }
        var code = Emit(b, out int ilBytes);
        b.Compiled = code;
        if (Shared.Count < MaxShared) Shared.TryAdd(key, (code, ilBytes));
        return ilBytes;
    }

    private static CompiledCode Emit(Block b, out int ilBytes)
    {
        var dm = new DynamicMethod($"block_{b.Eip:x8}", typeof(int), [typeof(X86Cpu), typeof(DecodedInsn[])], typeof(X86Cpu), skipVisibility: true);
        var il = dm.GetILGenerator();
        new BlockEmitter(il, b).Emit();
        ilBytes = il.ILOffset;
        return (CompiledCode)dm.CreateDelegate(typeof(CompiledCode));
    }
}
