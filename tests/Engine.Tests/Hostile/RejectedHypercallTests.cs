using Replayvisor.Engine.Cpu;
using Replayvisor.Engine.Machine;
using Replayvisor.Engine.State;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Tests.Xen.Mm;
using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using Xunit.Abstractions;

namespace Replayvisor.Engine.Tests.Hostile;

/// <summary>
/// The random-hypercall guest again, with an oracle on every call it makes: a single-request
/// memory-management hypercall that Xen refuses (negative result) must leave every frame's page
/// reference and type counts and pinned bit as they were before the call: a failed validation
/// rolls back every reference it took (Xen's set_gdt, mod_l*_entry, do_mmuext_op error paths).
/// </summary>
public class RejectedHypercallTests(ITestOutputHelper output)
{
    private const int MmuUpdate = 1, SetGdt = 2, UpdateDescriptor = 10, UpdateVaMapping = 14, MmuextOp = 26;

    /// <summary>All-or-nothing requests: one mmu_update or mmuext_op entry, or a single-target call.</summary>
    private static bool AllOrNothing(int nr, in HypercallArgs a) => nr switch
    {
        MmuUpdate or MmuextOp => a.A2 == 1, // the count
        SetGdt or UpdateDescriptor or UpdateVaMapping => true,
        _ => false,
    };

    /// <summary>
    /// Every frame's general and type reference counts and its pinned bit. (The type itself may
    /// change on a refused call, as in Xen: a frame typed and validated on the way and dropped back
    /// to count 0 keeps its new type, e.g. set_gdt's frames before a later one is refused.)
    /// </summary>
    private static byte[] PageTypes(XenMachine m) => PageTypes(m.Hypervisor.Mm.Frames);

    private static byte[] PageTypes(FrameTable frames)
    {
        var w = new CanonicalWriter();
        for (uint mfn = 0; mfn < frames.Count; mfn++)
        {
            w.I32(frames.RefCount(mfn));
            w.I32(frames.TypeCount(mfn));
            w.Bool(frames.IsPinned(mfn));
        }
        return w.Finish();
    }

    [Fact]
    public void ARefusedMemoryHypercallLeavesPageTypesUnchanged()
    {
        int checkedCalls = 0;
        int n = HostileRun.Iterations(4);
        for (int i = 0; i < n; i++)
        {
            var c = RandomHypercallTests.Case(5000 + i, pae: i % 3 != 2);
            var m = new XenMachine(c.Image, new XenMachineOptions { MemoryMiB = 8 });
            c.Prepare?.Invoke(m);
            var watch = new Watch(m);
            m.Cpu.Host = watch;
            m.Hypervisor.Observer = watch;
            HostileRun.Drive(m, m.Icount + c.Budget);
            Assert.True(watch.Violation == null, $"{c.Name}: {watch.Violation}");
            checkedCalls += watch.Checked;
        }
        output.WriteLine($"refused single-request hypercalls checked: {checkedCalls}");
        Assert.True(checkedCalls > 0, "no refused single-request hypercall was made: the oracle checked nothing");
    }

    /// <summary>
    /// set_gdt with three frames where one (the second or the third) cannot be a descriptor page:
    /// Xen's pv_set_gdt (xen/arch/x86/pv/descriptor-tables.c) takes a page and type reference on
    /// each frame in turn and, at the first refusal, drops those it took and returns -EINVAL before
    /// the old GDT is torn down. So the result is -EINVAL, the GDT installed before (one page)
    /// stays as it was, and no frame's reference or type count moves.
    /// </summary>
    [Theory]
    [InlineData("past the end of RAM", 1), InlineData("past the end of RAM", 2)]
    [InlineData("Xen's own frame", 1), InlineData("Xen's own frame", 2)]
    [InlineData("nobody's frame", 1), InlineData("nobody's frame", 2)]
    [InlineData("mapped writable", 1), InlineData("mapped writable", 2)]
    [InlineData("a page table", 1), InlineData("a page table", 2)]
    [InlineData("a refused descriptor", 1), InlineData("a refused descriptor", 2)]
    public void ASemiValidMultiPageGdtIsRefusedAndInstallsNothing(string bad, int badPage)
    {
        foreach (bool pae in new[] { false, true })
        {
            var f = new MmFixture(pae);
            uint old = f.FreeMfn(0);
            Assert.Equal(0, f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, old), 16, 0, 0, 0, 0)));
            uint[] frames = [f.FreeMfn(1), f.FreeMfn(2), f.FreeMfn(3)];
            frames[badPage] = BadFrame(f, bad);
            Assert.Equal(FrameOwner.Domain, f.Mm.Frames.OwnerOf(frames[0])); // the first frame is a good one

            byte[] before = PageTypes(f.Mm.Frames);
            ulong[] view = GdtView(f);
            long rc = f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, frames), 3 * 512, 0, 0, 0, 0));

            string what = $"{bad} as frame {badPage} (pae={pae})";
            Assert.True(rc == -Errno.EINVAL, $"{what}: set_gdt returned {rc}");
            Assert.True(before.AsSpan().SequenceEqual(PageTypes(f.Mm.Frames)), $"{what}: page reference or type counts changed");
            Assert.Equal(16u, f.Mm.GdtEntries);
            Assert.Equal(old, f.Mm.GdtFrame(0));
            for (int i = 1; i < XenLayout.FirstReservedGdtPage; i++) Assert.Equal(0u, f.Mm.GdtFrame(i));
            Assert.Equal(view, GdtView(f));
        }
    }

    private static uint BadFrame(MmFixture f, string bad)
    {
        switch (bad)
        {
            case "past the end of RAM": return f.Mm.Frames.Count + 5;
            case "Xen's own frame": return f.Domain.M2PFirstMfn;
            case "nobody's frame": Assert.Equal(FrameOwner.Nobody, f.Mm.Frames.OwnerOf(0)); return 0;
            case "mapped writable": return f.MfnAt(f.SpareVa(0));
            case "a page table": return f.L1Of(f.SpareVa(0)).L1Mfn;
            case "a refused descriptor":
                // A call gate to a selector in Xen's reserved area (SDM vol. 3 §5.8.2; docs/xen-abi.md §11).
                uint mfn = f.FreeMfn(4);
                f.Domain.Memory.Write64(((ulong)mfn << 12) + 0x18, (0xE019ul << 16) | (0xEEul << 40));
                return mfn;
            default: throw new ArgumentException(bad);
        }
    }

    /// <summary>The first descriptors of each guest GDT page as the CPU sees them through GDTR.</summary>
    private static ulong[] GdtView(MmFixture f) =>
        Enumerable.Range(0, 3).SelectMany(p => new[] { f.Cpu.ReadSystem(f.Cpu.GdtrBase + (uint)p * 0x1000, 8), f.Cpu.ReadSystem(f.Cpu.GdtrBase + (uint)p * 0x1000 + 0x18, 8) }).ToArray();

    /// <summary>Takes the page-type state at each hypercall entry (int 0x82) and compares it after refused ones.</summary>
    private sealed class Watch(XenMachine m) : ICpuHost, IXenObserver
    {
        private readonly ICpuHost _inner = m.Cpu.Host;
        private byte[]? _before;
        public int Checked;
        public string? Violation;

        public void Deliver(X86Cpu cpu, in CpuEvent e)
        {
            if (e.Kind == EventKind.SoftwareInterrupt && e.Vector == 0x82) _before = PageTypes(m);
            _inner.Deliver(cpu, e);
        }

        // Explicit, so a change of the observer's signature breaks the build instead of silently checking nothing.
        void IXenObserver.OnHypercall(ulong icount, int number, in HypercallArgs args, long result, ReadOnlySpan<MulticallResult> entries,
            HypercallOutput output)
        {
            if (result >= 0 || _before == null || !AllOrNothing(number, args)) return;
            Checked++;
            if (Violation == null && !PageTypes(m).AsSpan().SequenceEqual(_before))
                Violation = $"hypercall {number} ({args}) refused with {result} at instruction {icount} changed page reference or type counts";
        }

        public void Halt(X86Cpu cpu) => _inner.Halt(cpu);
        public ulong ReadTsc(X86Cpu cpu) => _inner.ReadTsc(cpu);
        public void Cpuid(X86Cpu cpu, uint leaf, uint subleaf, out uint eax, out uint ebx, out uint ecx, out uint edx) =>
            _inner.Cpuid(cpu, leaf, subleaf, out eax, out ebx, out ecx, out edx);
        public uint PortIn(X86Cpu cpu, ushort port, int size) => _inner.PortIn(cpu, port, size);
        public void PortOut(X86Cpu cpu, ushort port, int size, uint value) => _inner.PortOut(cpu, port, size, value);
        public bool ReadMsr(X86Cpu cpu, uint msr, out ulong value) => _inner.ReadMsr(cpu, msr, out value);
        public bool WriteMsr(X86Cpu cpu, uint msr, ulong value) => _inner.WriteMsr(cpu, msr, value);
    }
}
