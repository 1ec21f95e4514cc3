namespace Replayvisor.Engine.Xen.Mm;

/// <summary>
/// What <see cref="MemoryManager.HandlePageFault"/> decided: Handled = Xen fixed the fault (lazy LDT
/// mapping: the instruction restarts; writable-pagetable emulation: the instruction was emulated and
/// EIP advanced). Otherwise the core bounces #PF to the guest with <see cref="Cr2"/>.
/// </summary>
public readonly record struct PageFaultOutcome(bool Handled, uint Cr2)
{
    public static PageFaultOutcome Fixed(uint cr2) => new(true, cr2);
    public static PageFaultOutcome Bounce(uint cr2) => new(false, cr2);
}
