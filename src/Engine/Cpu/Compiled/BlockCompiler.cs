using System.Reflection.Emit;
using Replayvisor.Engine.Cpu.Decode;

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
    /// <summary>Compiles a cached block; its <see cref="Block.Compiled"/> is set. Returns the IL size in bytes.</summary>
    public static int Compile(Block b)
    {
        var dm = new DynamicMethod($"block_{b.Eip:x8}", typeof(int), [typeof(X86Cpu), typeof(DecodedInsn[])], typeof(X86Cpu), skipVisibility: true);
        var il = dm.GetILGenerator();
        new BlockEmitter(il, b).Emit();
        b.Compiled = (CompiledCode)dm.CreateDelegate(typeof(CompiledCode));
        return il.ILOffset;
    }
}
