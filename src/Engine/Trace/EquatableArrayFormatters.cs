using MessagePack;
using MessagePack.Formatters;

namespace Replayvisor.Engine.Trace;

/// <summary>
/// Resolves formatters for <see cref="EquatableArray{T}"/>: bytes as msgpack bin, anything else
/// as a msgpack array. Nil reads back as the empty array.
/// </summary>
internal sealed class EquatableArrayResolver : IFormatterResolver
{
    public static readonly EquatableArrayResolver Instance = new();

    public IMessagePackFormatter<T>? GetFormatter<T>() => Cache<T>.Formatter;

    private static class Cache<T>
    {
        public static readonly IMessagePackFormatter<T>? Formatter = Create();

        private static IMessagePackFormatter<T>? Create()
        {
            var type = typeof(T);
            if (type == typeof(EquatableArray<byte>))
                return (IMessagePackFormatter<T>)(object)new EquatableBytesFormatter();
            if (!type.IsGenericType || type.GetGenericTypeDefinition() != typeof(EquatableArray<>))
                return null;
            var formatter = typeof(EquatableArrayFormatter<>).MakeGenericType(type.GetGenericArguments());
            return (IMessagePackFormatter<T>?)Activator.CreateInstance(formatter);
        }
    }
}

internal sealed class EquatableBytesFormatter : IMessagePackFormatter<EquatableArray<byte>>
{
    public void Serialize(ref MessagePackWriter writer, EquatableArray<byte> value, MessagePackSerializerOptions options)
        => writer.Write(value.AsSpan());

    public EquatableArray<byte> Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        var bytes = reader.ReadBytes();
        return bytes is { } seq ? new EquatableArray<byte>(System.Buffers.BuffersExtensions.ToArray(seq)) : default;
    }
}

internal sealed class EquatableArrayFormatter<T> : IMessagePackFormatter<EquatableArray<T>>
    where T : IEquatable<T>
{
    public void Serialize(ref MessagePackWriter writer, EquatableArray<T> value, MessagePackSerializerOptions options)
    {
        var formatter = options.Resolver.GetFormatterWithVerify<T>();
        writer.WriteArrayHeader(value.Count);
        foreach (var item in value.AsSpan())
            formatter.Serialize(ref writer, item, options);
    }

    public EquatableArray<T> Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
    {
        if (reader.TryReadNil())
            return default;
        var formatter = options.Resolver.GetFormatterWithVerify<T>();
        var count = reader.ReadArrayHeader();
        var items = new T[count];
        options.Security.DepthStep(ref reader);
        try
        {
            for (var i = 0; i < count; i++)
                items[i] = formatter.Deserialize(ref reader, options);
        }
        finally
        {
            reader.Depth--;
        }
        return new EquatableArray<T>(items);
    }
}
