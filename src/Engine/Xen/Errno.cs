namespace Replayvisor.Engine.Xen;

/// <summary>Xen error codes as returned (negated) in EAX (docs/xen-abi.md §2).</summary>
public static class Errno
{
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENODEV = 19, ENOSPC = 28, ENOSYS = 38, ENODATA = 61, ETIME = 62, EOPNOTSUPP = 95;
    /// <summary>Xen-internal: the operation must be continued (never returned to a guest).</summary>
    public const int ERESTART = 85;
}
