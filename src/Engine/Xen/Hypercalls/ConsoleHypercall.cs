namespace Replayvisor.Engine.Xen.Hypercalls;

/// <summary>
/// console_io (xen/drivers/char/console.c). Release Xen refuses a domU (-EPERM); like a debug
/// build, the model accepts it from any domain (DESIGN.md: the simplest test output channel).
/// </summary>
internal static class ConsoleHypercall
{
    public const uint Write = 0, Read = 1;
    private const int Chunk = 128;

    public static long ConsoleIo(Hypervisor hv, in HypercallArgs a)
    {
        uint count = a.A2, buf = a.A3;
        switch (a.A1)
        {
            case Write:
            {
                Span<byte> chunk = stackalloc byte[Chunk];
                for (uint done = 0; done < count;)
                {
                    int n = (int)Math.Min((uint)Chunk, count - done);
                    if (!hv.Guest.TryRead(buf + done, chunk[..n])) return -Errno.EFAULT;
                    hv.EmitConsole(chunk[..n], ConsoleSource.Hypervisor);
                    done += (uint)n;
                }
                return 0;
            }
            case Read:
            {
                if (count == 0) return 0;
                var into = new byte[Math.Min(count, 4096u)];
                int n = hv.Console.PeekConsoleIo(into);
                if (n == 0) return 0;
                if (!hv.Guest.TryWrite(buf, into.AsSpan(0, n))) return -Errno.EFAULT;
                hv.Console.ConsumeConsoleIo(n);
                return n;
            }
            default:
                return -Errno.ENOSYS;
        }
    }
}
