namespace Replayvisor.Engine.Xen.Xenstore;

/// <summary>Message types and limits of the xenstore wire protocol (Xen's public/io/xs_wire.h).</summary>
public static class XsWire
{
    public const uint Control = 0, Directory = 1, Read = 2, GetPerms = 3, Watch = 4, Unwatch = 5,
        TransactionStart = 6, TransactionEnd = 7, Introduce = 8, Release = 9, GetDomainPath = 10,
        Write = 11, Mkdir = 12, Rm = 13, SetPerms = 14, WatchEvent = 15, Error = 16,
        IsDomainIntroduced = 17, Resume = 18, SetTarget = 19, ResetWatches = 21, DirectoryPart = 22;

    /// <summary>XENSTORE_PAYLOAD_MAX, XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX.</summary>
    public const int PayloadMax = 4096, AbsPathMax = 3072, RelPathMax = 2048;

    /// <summary>The header: type, req_id, tx_id, len (four little-endian uint32).</summary>
    public const int HeaderSize = 16;
}

/// <summary>One message on the ring (request or reply), payload as sent.</summary>
public sealed record XsMessage(uint Type, uint ReqId, uint TxId, byte[] Payload);
