namespace Replayvisor.Engine.Boot;

/// <summary>The hypercall transfer page for a ring-1 kernel (docs/xen-abi.md §1): 128 stubs of 32 bytes.</summary>
public static class HypercallPage
{
    public const int StubSize = 32;
    public const int StubCount = 128;
    public const int IretHypercall = 23;

    /// <summary>Stub i: <c>mov $i,%eax; int $0x82; ret</c>. Stub 23 (iret): <c>push %eax; mov $23,%eax; int $0x82</c>.</summary>
    public static byte[] Stub(int i)
    {
        if (i == IretHypercall)
            return [0x50, 0xB8, IretHypercall, 0, 0, 0, 0xCD, 0x82];
        return [0xB8, (byte)i, (byte)(i >> 8), (byte)(i >> 16), (byte)(i >> 24), 0xCD, 0x82, 0xC3];
    }

    /// <summary>Writes all stubs; the other 24 bytes of each slot are left as they were (§1).</summary>
    public static void Fill(GuestPhysicalView view, ulong pageGpa)
    {
        ArgumentNullException.ThrowIfNull(view);
        for (int i = 0; i < StubCount; i++)
            view.WriteBytes(pageGpa + (ulong)(i * StubSize), Stub(i));
    }
}
