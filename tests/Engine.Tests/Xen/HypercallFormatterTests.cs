using Replayvisor.Engine.Xen.Hypercalls;

namespace Replayvisor.Engine.Tests.Xen;

public class HypercallFormatterTests
{
    [Fact]
    public void DecodesArgumentsByKind()
    {
        Assert.Equal("set_timer_op(ns=10064681)", HypercallFormatter.Format(15, [10064681, 0, 0, 0, 0, 0]));
        Assert.Equal("set_timer_op(ns=4294967296)", HypercallFormatter.Format(15, [0, 1, 0, 0, 0, 0]));
        Assert.Equal("console_io(cmd=0, count=33, ptr=0xc0144c78)", HypercallFormatter.Format(18, [0, 33, 0xc0144c78, 0, 0, 0]));
        Assert.Equal("mmuext_op(ptr=0xc0144f1c, count=1, ptr=0xc0144f18, dom=SELF)", HypercallFormatter.Format(26, [0xc0144f1c, 1, 0xc0144f18, 0x7FF0, 0, 0]));
        Assert.StartsWith("update_va_mapping(va=0xc0150000, pte=0x1234567", HypercallFormatter.Format(14, [0xc0150000, 0x01234567, 0, 2, 0, 0]));
    }

    [Fact]
    public void UnknownNumbersShowRawArguments() =>
        Assert.Equal("hypercall_50(0x1, 0x2)", HypercallFormatter.Format(50, [1, 2]));
}
