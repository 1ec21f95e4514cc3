using Replayvisor.Engine.Memory;
using Replayvisor.Replay.Stepping;

namespace Replayvisor.Replay.Keyframes;

/// <summary>
/// A whole <see cref="ReplayState"/> as the payload of a keyframe chunk (docs/trace-format.md
/// "Keyframe chunks"): machine memory page by page (all-zero pages as one byte), then every other
/// field of the state through <see cref="StateCodec"/>. The chunk codec compresses the payload.
/// </summary>
public static class KeyframeCodec
{
    private const byte ZeroPage = 0, DataPage = 1;

    /// <summary>The layout this build writes and reads; a keyframe with another one is not used.</summary>
    public static string Layout { get; } = "replaystate-1:" + StateCodec.Layout(typeof(ReplayState));

    /// <summary>The payload for <paramref name="state"/> (a capture whose memory is held as pages).</summary>
    public static byte[] Encode(ReplayState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var pages = state.Machine.Pages ?? throw new ArgumentException("the state holds no memory pages", nameof(state));
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream))
        {
            w.Write(pages.FrameCount);
            for (int f = 0; f < pages.FrameCount; f++)
            {
                var page = pages.Frame(f);
                bool zero = !page.ContainsAnyExcept((byte)0);
                w.Write(zero ? ZeroPage : DataPage);
                if (!zero) w.Write(page);
            }
            StateCodec.Write(w, typeof(ReplayState), state with { Machine = state.Machine with { Pages = null, Ram = null } });
        }
        return stream.ToArray();
    }

    /// <summary>The state a payload holds. Throws <see cref="InvalidDataException"/> if it does not decode.</summary>
    public static ReplayState Decode(byte[] payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        try
        {
            using var r = new BinaryReader(new MemoryStream(payload, writable: false));
            int frames = r.ReadInt32();
            if (frames < 0 || (long)frames > payload.Length) throw new InvalidDataException($"implausible frame count {frames}");
            var pages = new byte[]?[frames];
            for (int f = 0; f < frames; f++)
            {
                byte kind = r.ReadByte();
                if (kind == DataPage) pages[f] = r.ReadBytes(PhysicalMemory.PageSize);
                else if (kind != ZeroPage) throw new InvalidDataException($"frame {f}: unknown page kind {kind}");
                if (pages[f] is { Length: not PhysicalMemory.PageSize }) throw new InvalidDataException($"frame {f} is cut short");
            }
            var state = (ReplayState?)StateCodec.Read(r, typeof(ReplayState)) ?? throw new InvalidDataException("no state");
            if (r.BaseStream.Position != payload.Length) throw new InvalidDataException("bytes left over after the state");
            return state with { Machine = state.Machine with { Pages = RamPages.FromFrames(pages) } };
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or NullReferenceException or InvalidCastException or OverflowException or FormatException)
        {
            throw new InvalidDataException(e.Message, e);
        }
    }
}
