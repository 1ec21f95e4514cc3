namespace Replayvisor.Engine.Cpu;

/// <summary>
/// How the CPU executes guest code. All three tiers produce identical results (state, instruction
/// counts, faults, traces); they differ only in speed. The slower ones are reference tiers.
/// </summary>
public enum CpuTier
{
    /// <summary>Decode and run one instruction at a time, no caching (the plain interpreter).</summary>
    Interpreter,
    /// <summary>Decode blocks once and run their instructions' handlers (the block cache).</summary>
    BlockCache,
    /// <summary>The block cache, plus hot blocks compiled to IL (<see cref="Compiled.BlockCompiler"/>).</summary>
    Compiled,
}
