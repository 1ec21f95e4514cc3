using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Replayvisor.Engine.State;

/// <summary>
/// XXH3-128 (seed 0, the default secret) of inputs longer than 240 bytes: the same value as
/// System.IO.Hashing's XxHash128 (its bytes are the value big-endian, high half first), for the state
/// hash. Ours because that package ships IL only: in a long-lived process (the bench, a debugger
/// session) its loops run as tier-0 and instrumented code for hundreds of checkpoints (perf: most of a
/// checkpoint's time), while a checkpoint must be cheap from the first. Here the stripe loops are
/// compiled fully optimised at their first call (and so are not precompiled in the ReadyToRun tool:
/// two small methods for the JIT). Shorter inputs use a different algorithm and are not taken.
/// <para>The long form (xxHash's doc/xxhash_spec.md, "XXH3 algorithm description", long inputs): the
/// input is read in 64-byte stripes, each added into eight 64-bit accumulators with the next 8 bytes
/// of the secret; after every 16 stripes (a block) the accumulators are scrambled. Only stripes
/// followed by at least one more byte are taken that way: the last 64 bytes of the input (which may
/// overlap the last stripe taken) go in with the secret at 121, then the accumulators are merged
/// into the two halves.</para>
/// <para>As a stream (<see cref="Append"/>, then <see cref="Finish"/>) it gives the hash of the pieces
/// joined, without copying them: a stripe is taken once a byte after it is known, up to 64 bytes
/// wait in a buffer, and the last stripe taken is kept for the final step.</para>
/// </summary>
public sealed class LongXxHash128
{
    /// <summary>Inputs must be longer than this (XXH3's mid-size limit).</summary>
    public const int MinLengthExclusive = 240;

    private const int Stripe = 64;
    private const int StripesPerBlock = 16; // (secret 192 - stripe 64) / 8 bytes per stripe
    private const int ScrambleKey = 192 - Stripe; // the secret's last 64 bytes
    private const int LastStripeKey = 192 - Stripe - 7;
    private const int MergeLowKey = 11, MergeHighKey = 192 - Stripe - 11;
    private const ulong Prime32_1 = 0x9E3779B1, Prime32_2 = 0x85EBCA77, Prime32_3 = 0xC2B2AE3D;
    private const ulong Prime64_1 = 0x9E3779B185EBCA87, Prime64_2 = 0xC2B2AE3D27D4EB4F, Prime64_3 = 0x165667B19E3779F9;
    private const ulong Prime64_4 = 0x85EBCA77C2B2AE63, Prime64_5 = 0x27D4EB2F165667C5;

    /// <summary>XXH3's default secret (xxhash.h XXH3_kSecret).</summary>
    private static ReadOnlySpan<byte> Secret =>
    [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];

    private readonly ulong[] _acc = new ulong[8];
    private int _stripes; // stripes taken in the current block
    private long _length;
    private readonly byte[] _pending = new byte[Stripe], _lastTaken = new byte[Stripe];
    private int _pendingCount;

    public LongXxHash128() => Start(_acc);

    /// <summary>Bytes appended so far.</summary>
    public long Length => _length;

    /// <summary>XXH3-128 of <paramref name="data"/> (longer than 240 bytes), as System.IO.Hashing's XxHash128.HashToUInt128.</summary>
    public static UInt128 Hash(ReadOnlySpan<byte> data) => Hash(data, Vectors);

    /// <summary>As <see cref="Hash(ReadOnlySpan{byte})"/>, with the vector stripe loop or the scalar one (tests take both).</summary>
    internal static UInt128 Hash(ReadOnlySpan<byte> data, bool vectors)
    {
        if (data.Length <= MinLengthExclusive) throw new ArgumentOutOfRangeException(nameof(data), "XXH3's long form needs more than 240 bytes");
        Span<ulong> acc = stackalloc ulong[8];
        Start(acc);
        int stripes = 0;
        var whole = data[..((data.Length - 1) / Stripe * Stripe)];
        if (vectors) TakeAvx2(acc, ref stripes, whole);
        else TakeScalar(acc, ref stripes, whole);
        return Digest(acc, stripes, data[^Stripe..], (ulong)data.Length);
    }

    /// <summary>Whether the stripes are taken with AVX2 on this machine.</summary>
    internal static bool Vectors => Avx2.IsSupported && BitConverter.IsLittleEndian;

    /// <summary>Appends bytes (they may change as soon as this returns: nothing of them is kept but the last 64).</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        _length += data.Length;
        if (_pendingCount + data.Length <= Stripe)
        {
            data.CopyTo(_pending.AsSpan(_pendingCount));
            _pendingCount += data.Length;
            return;
        }
        if (_pendingCount > 0)
        {
            // The waiting bytes make a full stripe, and at least one byte follows it.
            int fill = Stripe - _pendingCount;
            data[..fill].CopyTo(_pending.AsSpan(_pendingCount));
            data = data[fill..];
            Take(_acc, ref _stripes, _pending);
            _pending.CopyTo(_lastTaken, 0);
            _pendingCount = 0;
        }
        int whole = (data.Length - 1) / Stripe * Stripe; // every stripe with a byte after it
        if (whole > 0)
        {
            Take(_acc, ref _stripes, data[..whole]);
            data.Slice(whole - Stripe, Stripe).CopyTo(_lastTaken);
        }
        data[whole..].CopyTo(_pending);
        _pendingCount = data.Length - whole;
    }

    /// <summary>The hash of everything appended (more than 240 bytes), as System.IO.Hashing's XxHash128.GetCurrentHashAsUInt128.</summary>
    public UInt128 Finish()
    {
        if (_length <= MinLengthExclusive) throw new InvalidOperationException("XXH3's long form needs more than 240 bytes");
        // The input's last 64 bytes: the end of the last stripe taken, then the bytes still waiting.
        Span<byte> last = stackalloc byte[Stripe];
        _lastTaken.AsSpan(_pendingCount).CopyTo(last);
        _pending.AsSpan(0, _pendingCount).CopyTo(last[(Stripe - _pendingCount)..]);
        Span<ulong> acc = stackalloc ulong[8];
        _acc.CopyTo(acc);
        return Digest(acc, _stripes, last, (ulong)_length);
    }

    /// <summary>The hash as System.IO.Hashing writes it: big-endian, the high half first.</summary>
    public static byte[] ToBytes(UInt128 hash)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, hash);
        return b;
    }

    private static void Start(Span<ulong> acc)
    {
        acc[0] = Prime32_3; acc[1] = Prime64_1; acc[2] = Prime64_2; acc[3] = Prime64_3;
        acc[4] = Prime64_4; acc[5] = Prime32_2; acc[6] = Prime64_5; acc[7] = Prime32_1;
    }

    /// <summary>Takes whole stripes into the accumulators, scrambling before a stripe that starts a new block.</summary>
    private static void Take(Span<ulong> acc, ref int stripes, ReadOnlySpan<byte> data)
    {
        if (Vectors) TakeAvx2(acc, ref stripes, data);
        else TakeScalar(acc, ref stripes, data);
    }

    /// <summary>The stripes a 256-bit vector (four accumulators) at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TakeAvx2(Span<ulong> acc, ref int stripes, ReadOnlySpan<byte> data)
    {
        ref byte secret = ref MemoryMarshal.GetReference(Secret);
        ref byte src = ref MemoryMarshal.GetReference(data);
        var lo = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(acc));
        var hi = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(acc), 4);
        var keyLo = Vector256.LoadUnsafe(ref Unsafe.Add(ref secret, ScrambleKey)).AsUInt64();
        var keyHi = Vector256.LoadUnsafe(ref Unsafe.Add(ref secret, ScrambleKey + 32)).AsUInt64();
        int s = stripes;
        for (int at = 0; at < data.Length; at += Stripe)
        {
            if (s == StripesPerBlock)
            {
                lo = ScrambleAvx2(lo, keyLo);
                hi = ScrambleAvx2(hi, keyHi);
                s = 0;
            }
            ref byte key = ref Unsafe.Add(ref secret, s * 8);
            lo = StripeAvx2(lo, Vector256.LoadUnsafe(ref Unsafe.Add(ref src, at)).AsUInt64(), Vector256.LoadUnsafe(ref key).AsUInt64());
            hi = StripeAvx2(hi, Vector256.LoadUnsafe(ref Unsafe.Add(ref src, at + 32)).AsUInt64(), Vector256.LoadUnsafe(ref Unsafe.Add(ref key, 32)).AsUInt64());
            s++;
        }
        stripes = s;
        lo.StoreUnsafe(ref MemoryMarshal.GetReference(acc));
        hi.StoreUnsafe(ref MemoryMarshal.GetReference(acc), 4);
    }

    /// <summary>acc[i ^ 1] += d[i]; acc[i] += low32(d[i] ^ k[i]) * high32(d[i] ^ k[i]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> StripeAvx2(Vector256<ulong> acc, Vector256<ulong> d, Vector256<ulong> k)
    {
        var dk = d ^ k;
        var product = Avx2.Multiply(dk.AsUInt32(), Avx2.ShiftRightLogical(dk, 32).AsUInt32());
        var swapped = Avx2.Shuffle(d.AsUInt32(), 0b01_00_11_10).AsUInt64(); // the two 64-bit lanes of each pair swapped
        return acc + swapped + product;
    }

    /// <summary>acc = (acc ^ (acc >> 47) ^ key) * PRIME32_1, the 64-bit product from two 32 x 32 ones.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> ScrambleAvx2(Vector256<ulong> acc, Vector256<ulong> key)
    {
        var a = acc ^ Avx2.ShiftRightLogical(acc, 47) ^ key;
        var prime = Vector256.Create((uint)Prime32_1);
        var low = Avx2.Multiply(a.AsUInt32(), prime);
        var high = Avx2.Multiply(Avx2.ShiftRightLogical(a, 32).AsUInt32(), prime);
        return low + Avx2.ShiftLeftLogical(high, 32);
    }

    /// <summary>The stripes one accumulator at a time (machines without AVX2).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TakeScalar(Span<ulong> acc, ref int stripes, ReadOnlySpan<byte> data)
    {
        ReadOnlySpan<byte> secret = Secret;
        for (int at = 0; at < data.Length; at += Stripe)
        {
            if (stripes == StripesPerBlock)
            {
                ScrambleScalar(acc);
                stripes = 0;
            }
            StripeScalar(acc, data.Slice(at, Stripe), secret[(stripes * 8)..]);
            stripes++;
        }
    }

    private static void ScrambleScalar(Span<ulong> acc)
    {
        ReadOnlySpan<byte> key = Secret[ScrambleKey..];
        for (int i = 0; i < 8; i++)
        {
            ulong a = acc[i];
            a ^= a >> 47;
            a ^= BinaryPrimitives.ReadUInt64LittleEndian(key[(i * 8)..]);
            acc[i] = a * Prime32_1;
        }
    }

    private static void StripeScalar(Span<ulong> acc, ReadOnlySpan<byte> stripe, ReadOnlySpan<byte> key)
    {
        for (int i = 0; i < 8; i++)
        {
            ulong d = BinaryPrimitives.ReadUInt64LittleEndian(stripe[(i * 8)..]);
            ulong dk = d ^ BinaryPrimitives.ReadUInt64LittleEndian(key[(i * 8)..]);
            acc[i ^ 1] += d;
            acc[i] += (dk & 0xFFFFFFFF) * (dk >> 32);
        }
    }

    /// <summary>The last step: scramble if the last block was full, the input's last 64 bytes, then the merges.</summary>
    private static UInt128 Digest(Span<ulong> acc, int stripes, ReadOnlySpan<byte> last64, ulong length)
    {
        ReadOnlySpan<byte> secret = Secret;
        if (stripes == StripesPerBlock) ScrambleScalar(acc); // a full block with bytes after it
        StripeScalar(acc, last64, secret[LastStripeKey..]);
        ulong low = Merge(acc, secret[MergeLowKey..], length * Prime64_1);
        ulong high = Merge(acc, secret[MergeHighKey..], ~(length * Prime64_2));
        return new UInt128(high, low);
    }

    private static ulong Merge(ReadOnlySpan<ulong> acc, ReadOnlySpan<byte> key, ulong start)
    {
        ulong r = start;
        for (int i = 0; i < 4; i++)
        {
            ulong a = acc[2 * i] ^ BinaryPrimitives.ReadUInt64LittleEndian(key[(16 * i)..]);
            ulong b = acc[2 * i + 1] ^ BinaryPrimitives.ReadUInt64LittleEndian(key[(16 * i + 8)..]);
            ulong h = Math.BigMul(a, b, out ulong l);
            r += h ^ l;
        }
        r ^= r >> 37;
        r *= 0x165667919E3779F9;
        return r ^ (r >> 32);
    }
}
