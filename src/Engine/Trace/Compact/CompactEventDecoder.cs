using System.Runtime.CompilerServices;
using MessagePack;

namespace Replayvisor.Engine.Trace.Compact;

/// <summary>Decodes the payload of a compact events chunk (docs/trace-format.md "Compact events chunks").</summary>
internal static class CompactEventDecoder
{
    /// <summary>The events of <paramref name="raw"/>, every one built; a malformed payload is <see cref="CompactFormatException"/>.</summary>
    public static TraceEvent[] Decode(byte[] raw) => DecodeColumns(raw).ToArray();

    /// <summary>
    /// The events of <paramref name="raw"/> as columns (<see cref="ChunkEvents"/>: hypercalls without
    /// multicall entries and upcalls are not built); a malformed payload is <see cref="CompactFormatException"/>.
    /// </summary>
    /// <remarks>
    /// Optimised at once: a replay decodes a few dozen chunks, too few calls for tiered JIT to
    /// optimise this loop soon (tier-0 code made a chunk cost about twice as much).
    /// </remarks>
    /// <param name="raw">The payload.</param>
    /// <param name="countOnly">Check everything, keep only what <see cref="ChunkEvents.InputCount"/> and <see cref="ChunkEvents.IcountAt"/> need.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static ChunkEvents DecodeColumns(byte[] raw, bool countOnly = false)
    {
        var head = new ColumnReader(raw, CompactColumn.Kind);
        // Every event takes at least its kind byte and icount byte: a count past that is damage.
        int count = head.Count(raw.Length / 2);
        int columns = head.Count(raw.Length);
        if (columns < CompactCodes.BaseColumnCount) throw new CompactFormatException($"{columns} columns, expected at least {CompactCodes.BaseColumnCount}");
        var lengths = new int[columns];
        long total = 0;
        for (int i = 0; i < columns; i++)
        {
            lengths[i] = head.Count(raw.Length);
            total += lengths[i];
        }
        int start = raw.Length - head.Remaining;
        if (total != head.Remaining) throw new CompactFormatException($"the columns hold {total} bytes, the payload {head.Remaining}");
        var col = new ColumnReader[CompactCodes.ColumnCount];
        int at = start;
        for (int i = 0; i < columns; i++)
        {
            if (i < col.Length) col[i] = new ColumnReader(raw, at, lengths[i], (CompactColumn)i);
            at += lengths[i];
        }
        // Columns this chunk leaves out are empty (the upcall sites of a chunk without any).
        for (int i = columns; i < col.Length; i++) col[i] = new ColumnReader(raw, at, 0, (CompactColumn)i);
        var upcallSites = new UpcallSites(col[(int)CompactColumn.UpcallSite].Remaining > 0);
        bool handlers = col[(int)CompactColumn.ExceptionHandler].Remaining > 0;
        uint lastHandler = 0;

        // Every argument and port takes at least a byte of its column: their count is at most the columns' length.
        var events = new ChunkEvents(count, col[(int)CompactColumn.HypercallArgs].Remaining + col[(int)CompactColumn.Upcall].Remaining, countOnly);
        var history = new HypercallHistory();
        var lastTime = new ulong[256];
        ulong icount = 0;
        for (int n = 0; n < count; n++)
        {
            ulong delta = col[(int)CompactColumn.Icount].Varint();
            if (delta > ulong.MaxValue - icount) throw new CompactFormatException($"event {n}: the icount passes 2^64");
            icount += delta;
            byte kind = col[(int)CompactColumn.Kind].Byte();
            // The vCPU of every event stored in the columns, except an upcall's (in its own column).
            int v = kind is CompactCodes.Upcall or CompactCodes.Escaped ? 0 : col[(int)CompactColumn.Vcpu].I32();
            switch (kind)
            {
                case CompactCodes.Hypercall: Hypercall(events, n, icount, col, history, v); break;
                case CompactCodes.Upcall: Upcall(events, n, icount, ref col[(int)CompactColumn.Upcall], ref col[(int)CompactColumn.UpcallSite], ref upcallSites); break;
                case CompactCodes.Time: events.SetObject(n, Time(icount, ref col[(int)CompactColumn.Time], lastTime, v)); break;
                case CompactCodes.Async: events.SetObject(n, Async(icount, ref col[(int)CompactColumn.Async], v)); break;
                case CompactCodes.Exception:
                    events.SetObject(n, Exception(icount, ref col[(int)CompactColumn.Exception], v, handlers, ref col[(int)CompactColumn.ExceptionHandler], ref lastHandler));
                    break;
                case CompactCodes.Checkpoint: events.SetObject(n, Checkpoint(icount, ref col[(int)CompactColumn.Checkpoint], v)); break;
                case CompactCodes.Escaped: events.SetObject(n, Escaped(icount, ref col[(int)CompactColumn.Escaped], n)); break;
                default: throw new CompactFormatException($"event {n} has kind {kind}, which a compact chunk does not store");
            }
        }
        foreach (var c in col)
            if (!c.AtEnd) throw new CompactFormatException($"column {c.Column} holds bytes past its last event");
        return events;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Hypercall(ChunkEvents events, int index, ulong icount, ColumnReader[] col, HypercallHistory history, int vcpu)
    {
        int number = col[(int)CompactColumn.HypercallNumber].I32();
        byte shape = col[(int)CompactColumn.HypercallShape].Byte();
        if ((shape & ~(CompactCodes.ArgCountMask | CompactCodes.HasDigest | CompactCodes.HasMulticall)) != 0)
            throw new CompactFormatException($"hypercall shape {shape:x2} has unknown bits");
        var previous = history.For(number);
        var last = previous.Args;
        int argCount = shape & CompactCodes.ArgCountMask;
        ref var argColumn = ref col[(int)CompactColumn.HypercallArgs];
        events.BeginValues(index);
        for (int i = 0; i < argCount; i++)
        {
            last[i] += (uint)argColumn.I32();
            events.AddValue(index, last[i]);
        }
        long result = col[(int)CompactColumn.HypercallResult].Signed();
        ulong digest = 0;
        if ((shape & CompactCodes.HasDigest) != 0)
        {
            digest = col[(int)CompactColumn.HypercallDigest].U64Le();
            if (digest == 0) throw new CompactFormatException("a hypercall digest of 0 is stored as absent");
        }
        uint site = previous.Site += (uint)col[(int)CompactColumn.HypercallSite].I32();
        events.SetHypercall(index, icount, vcpu, number, result, digest, site);
        if ((shape & CompactCodes.HasMulticall) != 0)
        {
            ref var mc = ref col[(int)CompactColumn.Multicall];
            int n = mc.Count(mc.Remaining / 2);
            if (n == 0) throw new CompactFormatException("a multicall with no entries is stored as absent");
            var entries = new MulticallEntry[n];
            for (int i = 0; i < n; i++) entries[i] = new MulticallEntry(mc.I32(), mc.Signed());
            // Rare: stored as the event itself (ChunkEvents keeps only plain hypercalls in columns).
            events.SetObject(index, new HypercallEvent(icount, number, last.AsSpan(0, argCount).ToArray(), result, entries, default, digest, site) { Vcpu = vcpu });
        }
    }

    /// <summary>Whether the chunk stores upcall sites, and the last upcall's (the base of the next one's differences).</summary>
    private struct UpcallSites(bool present)
    {
        public readonly bool Present = present;
        public uint Eip, Handler;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Upcall(ChunkEvents events, int index, ulong icount, ref ColumnReader c, ref ColumnReader siteColumn, ref UpcallSites sites)
    {
        int vcpu = (int)c.U32Signed31();
        int ports = c.Count(c.Remaining);
        events.BeginValues(index);
        for (int i = 0; i < ports; i++) events.AddValue(index, c.U32());
        if (sites.Present)
        {
            sites.Eip += (uint)siteColumn.I32();
            sites.Handler += (uint)siteColumn.I32();
        }
        events.SetUpcall(index, icount, vcpu, sites.Eip, sites.Handler);
    }

    private static TimeEvent Time(ulong icount, ref ColumnReader c, ulong[] last, int vcpu)
    {
        byte kind = c.Byte();
        last[kind] += (ulong)c.Signed();
        return new TimeEvent(icount, (TimeKind)kind, last[kind]) { Vcpu = vcpu };
    }

    private static AsyncEvent Async(ulong icount, ref ColumnReader c, int vcpu)
    {
        byte kind = c.Byte();
        return new AsyncEvent(icount, (AsyncKind)kind, c.U32(), c.Varint()) { Vcpu = vcpu };
    }

    private static ExceptionEvent Exception(ulong icount, ref ColumnReader c, int vcpu, bool handlers, ref ColumnReader handlerColumn, ref uint lastHandler)
    {
        var x = new ExceptionEvent(icount, (int)c.U32Signed31(), c.U32(), c.U32(), c.U32()) { Vcpu = vcpu };
        if (handlers) lastHandler += (uint)handlerColumn.I32();
        return x with { Handler = lastHandler };
    }

    private static CheckpointEvent Checkpoint(ulong icount, ref ColumnReader c, int vcpu)
    {
        int n = c.Count(c.Remaining);
        return new CheckpointEvent(icount, c.Bytes(n).ToArray()) { Vcpu = vcpu };
    }

    private static TraceEvent Escaped(ulong icount, ref ColumnReader c, int n)
    {
        int length = c.Count(c.Remaining);
        var bytes = c.Bytes(length).ToArray();
        TraceEvent? e;
        try
        {
            e = MessagePackSerializer.Deserialize<TraceEvent>(bytes, TraceMessagePack.Options, out int read);
            if (read != bytes.Length) throw new CompactFormatException($"event {n}: bytes after the escaped event");
        }
        catch (MessagePackSerializationException ex)
        {
            throw new CompactFormatException($"event {n} does not decode: {ex.InnerException?.Message ?? ex.Message}");
        }
        if (e is null) throw new CompactFormatException($"event {n} is nil or of an unknown kind");
        if (e.Icount != icount) throw new CompactFormatException($"event {n}: its icount {e.Icount} is not the column's {icount}");
        return e;
    }
}
