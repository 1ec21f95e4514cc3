using Replayvisor.Engine.Xen;
using Replayvisor.Engine.Xen.Mm;
using static Replayvisor.Engine.Tests.Xen.Mm.MmFixture;

namespace Replayvisor.Engine.Tests.Xen.Mm;

public class DescriptorTests
{
    private const long Einval = -Errno.EINVAL;

    /// <summary>A code/data descriptor: limit field (20 bits), access byte, flags nibble (G=8, D/B=4).</summary>
    private static ulong Seg(uint @base, uint limit, byte access, uint flags = 0xC)
    {
        uint lo = (limit & 0xFFFF) | (@base << 16);
        uint hi = ((@base >> 16) & 0xFF) | ((uint)access << 8) | (limit & 0xF0000) | (flags << 20) | (@base & 0xFF000000);
        return lo | ((ulong)hi << 32);
    }

    private static ulong Gate(ushort sel, uint offset, byte access, uint paramBits = 0) =>
        (offset & 0xFFFF) | ((ulong)sel << 16) | ((ulong)((offset & 0xFFFF0000) | ((uint)access << 8) | paramBits) << 32);

    private static uint LimitField(ulong d) => (uint)(d & 0xFFFF) | (uint)((d >> 32) & 0xF0000);

    [Theory, InlineData(false), InlineData(true)]
    public void CheckDescriptorAdjustsAndRefuses(bool pae)
    {
        var f = new MmFixture(pae);
        uint max = f.Layout.GuestSegmentMax;
        bool Check(ref ulong d) => DescriptorCheck.Check(ref d, max);

        ulong d = Seg(0, 0xFFFFF, 0x92);                  // flat DPL0 data, 4 GB
        Assert.True(Check(ref d));
        Assert.Equal(0xB2u, (uint)(d >> 40) & 0xFF);        // DPL raised to 1
        Assert.Equal((max >> 12) - 1, LimitField(d));       // truncated at M2P end
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C04), d); // = FLAT_RING1_DS

        d = Seg(0, 0xFFFFF, 0xFA);                          // ring-3 code
        Assert.True(Check(ref d));
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C05), d);

        d = Seg(0x1000, 0x10, 0xF2, 0x4);                   // small byte-granular segment: unchanged
        ulong orig = d;
        Assert.True(Check(ref d));
        Assert.Equal(orig, d);

        d = Seg(max - 0x2000, 0xFFFFF, 0xF2, 0x4);          // byte-granular, would need truncation
        Assert.False(Check(ref d));
        d = Seg(max - 0x1000, 0, 0xF2);                     // base too close to Xen
        Assert.False(Check(ref d));

        d = Seg(0x1000, 0, 0xB6);                           // expand-down, G=1, not wrapping → limit = -(base & ~0xFFF)
        Assert.True(Check(ref d));
        Assert.Equal(0xFFFFEu, LimitField(d));

        d = Seg(0, 0xFFFFF, 0x12) | 0xFFFF;                 // not present: anything goes
        orig = d;
        Assert.True(Check(ref d));
        Assert.Equal(orig, d);

        d = Gate(0xE019, 0xC0100000, 0x8C);                 // call gate to FLAT_KERNEL_CS, DPL0 → 1
        Assert.True(Check(ref d));
        Assert.Equal(0xACu, (uint)(d >> 40) & 0xFF);
        d = Gate(0x0010, 0xC0100000, 0xEC);                 // RPL 0 target → RPL 1
        Assert.True(Check(ref d));
        Assert.Equal(0x0011u, (uint)(d >> 16) & 0xFFFF);
        d = Gate(0x0007, 0, 0xEC);                          // LDT selector
        Assert.True(Check(ref d));
        d = Gate(0xE008, 0, 0xEC);                          // Xen's code selector
        Assert.False(Check(ref d));
        d = Gate(0xE019, 0, 0xEC, 0x20);                    // reserved bits 5–7
        Assert.False(Check(ref d));
        foreach (byte access in new byte[] { 0xEE, 0xEF, 0xE5, 0xE9, 0xE2 }) // interrupt/trap/task gates, TSS, LDT
        {
            d = Gate(0xE019, 0, access);
            Assert.False(Check(ref d));
        }
    }

    [Theory, InlineData(false), InlineData(true)]
    public void UpdateDescriptorRules(bool pae)
    {
        var f = new MmFixture(pae);
        ulong frame = (ulong)f.FreeMfn(0) << 12;
        long Upd(ulong pa, ulong d) => f.Mm.UpdateDescriptor(new((uint)pa, (uint)(pa >> 32), (uint)d, (uint)(d >> 32), 0, 0));

        Assert.Equal(0, Upd(frame + 8, Seg(0, 0xFFFFF, 0x92)));
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C04), f.Domain.Memory.Read64(frame + 8));
        Assert.Equal(0, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
        Assert.Equal(Einval, Upd(frame + 4, 0));                                     // misaligned
        Assert.Equal(Einval, Upd(frame + 8, Gate(0xE008, 0, 0xEC)));                  // refused descriptor
        Assert.Equal(Einval, Upd(frame | (1ul << 40), 0));                            // no such frame
        Assert.Equal(Einval, Upd((ulong)f.Domain.M2PFirstMfn << 12, 0));              // Xen's frame
        Assert.Equal((0L, 1u), f.Ext((MmuextCmd.PinL1Table, f.FreeMfn(1), 0)));
        Assert.Equal(Einval, Upd((ulong)f.FreeMfn(1) << 12, 0));                      // a page table
        // A GDT frame keeps its type.
        Assert.Equal(0, f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, f.FreeMfn(0)), 512, 0, 0, 0, 0)));
        Assert.Equal(0, Upd(frame + 16, Seg(0, 0xFFFFF, 0xFA)));
        Assert.Equal(PageType.GdtPage, f.Mm.Frames.TypeOf(f.FreeMfn(0)));
        Assert.Equal(1, f.Mm.Frames.TypeCount(f.FreeMfn(0)));
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C05), f.Cpu.ReadSystem(f.Cpu.GdtrBase + 16, 8));
    }

    [Theory, InlineData(false), InlineData(true)]
    public void SetGdtInstallsCheckedFramesAndProtectsThem(bool pae)
    {
        var f = new MmFixture(pae);
        uint g0 = f.FreeMfn(0), g1 = f.FreeMfn(1);
        f.Domain.Memory.Write64(((ulong)g0 << 12) + 8, Seg(0, 0xFFFFF, 0x9A)); // DPL0 code: adjusted in place
        f.Domain.Memory.Write64(((ulong)g1 << 12) + 8, Seg(0, 0xFFFFF, 0xF2));
        Assert.Equal(Einval, f.Mm.SetGdt(new(f.Args, 7169, 0, 0, 0, 0)));
        Assert.Equal(-Errno.EFAULT, f.Mm.SetGdt(new(0x1000, 1, 0, 0, 0, 0)));
        uint rwMapped = f.MfnAt(f.SpareVa(0));
        Assert.Equal(Einval, f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, g0, rwMapped), 1024, 0, 0, 0, 0)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(g0)); // rolled back
        Assert.Equal(0u, f.Mm.GdtEntries);

        Assert.Equal(0, f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, g0, g1), 1000, 0, 0, 0, 0)));
        Assert.Equal(1000u, f.Mm.GdtEntries);
        Assert.Equal(g1, f.Mm.GdtFrame(1));
        Assert.Equal(PageType.GdtPage, f.Mm.Frames.TypeOf(g0));
        Assert.Equal(0xBAu, (uint)(f.Domain.Memory.Read64(((ulong)g0 << 12) + 8) >> 40) & 0xFF);
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C03), f.Cpu.ReadSystem(f.Cpu.GdtrBase + 8, 8));
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C06), f.Cpu.ReadSystem(f.Cpu.GdtrBase + 0x1008, 8));
        Assert.Equal(0ul, f.Cpu.ReadSystem(f.Cpu.GdtrBase + 0x2008, 8));                // page 2 not supplied
        Assert.Equal(f.Layout.ReservedGdtDescriptor(0x1C03), f.Cpu.ReadSystem(f.Cpu.GdtrBase + 0xE018, 8));
        // No writable mapping of a GDT frame, and no table use of it.
        Assert.Equal(Einval, f.Uvm(f.SpareVa(1), f.Entry(g0, P | RW | A)));
        Assert.Equal(0, f.Uvm(f.SpareVa(1), f.Entry(g0, P | A)));
        Assert.Equal((Einval, 0u), f.Ext((MmuextCmd.PinL1Table, g0, 0)));
        // A frame holding a refused descriptor cannot become a GDT page; the old GDT stays.
        f.Domain.Memory.Write64(((ulong)f.FreeMfn(2) << 12) + 0x18, Gate(0xE019, 0, 0xEE));
        Assert.Equal(Einval, f.Mm.SetGdt(new(MmuUpdateTests.WriteList(f, f.FreeMfn(2)), 4, 0, 0, 0, 0)));
        Assert.Equal(g0, f.Mm.GdtFrame(0));
        // Replacing the GDT releases the old frames.
        Assert.Equal(0, f.Mm.SetGdt(new(f.Args, 0, 0, 0, 0, 0)));
        Assert.Equal(0, f.Mm.Frames.TypeCount(g0));
        Assert.Equal(0, f.Uvm(f.SpareVa(1), f.Entry(g0, P | RW | A)));
    }
}
