using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace Replayvisor.Replay.Keyframes;

/// <summary>
/// Writes and reads the snapshot records of the engine (plain data: primitives, enums, strings,
/// arrays, structs, sealed classes and records) field by field, every instance field including
/// private ones and property backing fields, in ordinal order of field name. Nothing is listed by
/// hand, so a field another part of the engine adds to a snapshot travels in keyframes without
/// an edit here; <see cref="Layout"/> fingerprints the field names and types, and a keyframe
/// written with another layout is not used (docs/trace-format.md "Keyframe chunks").
/// </summary>
internal static class StateCodec
{
    private static readonly ConcurrentDictionary<Type, FieldInfo[]> Fields = new();

    /// <summary>A short fingerprint of everything <see cref="Write"/> writes for <paramref name="root"/>.</summary>
    public static string Layout(Type root)
    {
        var text = new StringBuilder();
        Describe(root, text, []);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..16];
    }

    private static void Describe(Type t, StringBuilder text, HashSet<Type> seen)
    {
        text.Append(t.FullName).Append(';');
        if (IsLeaf(t) || !seen.Add(t)) return;
        if (t.IsArray) { Describe(t.GetElementType()!, text, seen); return; }
        if (Nullable.GetUnderlyingType(t) is { } inner) { Describe(inner, text, seen); return; }
        if (Collection(t) is { } args) { foreach (var a in args) Describe(a, text, seen); return; }
        if (!Supported(t)) return; // written only as null; a value of it is refused when written
        text.Append('{');
        foreach (var f in FieldsOf(t)) { text.Append(f.Name).Append(':'); Describe(f.FieldType, text, seen); }
        text.Append('}');
    }

    private static bool IsLeaf(Type t) => t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal);

    /// <summary>Structs, and classes whose instances are exactly the declared type (sealed), made of supported fields.</summary>
    private static bool Supported(Type t) => t.IsValueType || (t.IsSealed && !typeof(Delegate).IsAssignableFrom(t));

    private static FieldInfo[] FieldsOf(Type t) => Fields.GetOrAdd(t, static type =>
    {
        var all = new List<FieldInfo>();
        for (var k = type; k != null && k != typeof(object) && k != typeof(ValueType); k = k.BaseType)
            all.AddRange(k.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly));
        return [.. all.OrderBy(f => f.DeclaringType!.FullName, StringComparer.Ordinal).ThenBy(f => f.Name, StringComparer.Ordinal)];
    });

    public static void Write(BinaryWriter w, Type t, object? value)
    {
        if (t.IsEnum) { WritePrimitive(w, Enum.GetUnderlyingType(t), value!); return; }
        if (t.IsPrimitive) { WritePrimitive(w, t, value!); return; }
        if (Nullable.GetUnderlyingType(t) is { } inner)
        {
            w.Write(value != null);
            if (value != null) Write(w, inner, value);
            return;
        }
        if (!t.IsValueType)
        {
            w.Write(value != null);
            if (value == null) return;
            if (value.GetType() != t) throw new NotSupportedException($"a {value.GetType()} where a {t} is declared cannot go into a keyframe");
        }
        if (t == typeof(string)) { w.Write((string)value!); return; }
        if (t.IsArray) { WriteArray(w, t.GetElementType()!, (Array)value!); return; }
        if (Collection(t) is { } args) { WriteCollection(w, args, value!); return; }
        if (!Supported(t)) throw new NotSupportedException($"{t} cannot go into a keyframe");
        foreach (var f in FieldsOf(t)) Write(w, f.FieldType, f.GetValue(value));
    }

    public static object? Read(BinaryReader r, Type t)
    {
        if (t.IsEnum) return Enum.ToObject(t, ReadPrimitive(r, Enum.GetUnderlyingType(t)));
        if (t.IsPrimitive) return ReadPrimitive(r, t);
        if (Nullable.GetUnderlyingType(t) is { } inner) return r.ReadBoolean() ? Read(r, inner) : null;
        if (!t.IsValueType && !r.ReadBoolean()) return null;
        if (t == typeof(string)) return r.ReadString();
        if (t.IsArray) return ReadArray(r, t.GetElementType()!);
        if (Collection(t) is { } args) return ReadCollection(r, t, args);
        if (!Supported(t)) throw new InvalidDataException($"{t} cannot come out of a keyframe");
        object o = RuntimeHelpers.GetUninitializedObject(t);
        foreach (var f in FieldsOf(t)) f.SetValue(o, Read(r, f.FieldType));
        return o;
    }

    /// <summary>The type arguments of a List, Dictionary or SortedDictionary (written as their items, not their fields), else null.</summary>
    private static Type[]? Collection(Type t)
    {
        if (!t.IsGenericType) return null;
        var g = t.GetGenericTypeDefinition();
        return g == typeof(List<>) || g == typeof(Dictionary<,>) || g == typeof(SortedDictionary<,>) ? t.GetGenericArguments() : null;
    }

    /// <summary>Count, then the items (keys and values) in enumeration order; a dictionary's comparer as a tag: 0 the default, 1 ordinal strings.</summary>
    private static void WriteCollection(BinaryWriter w, Type[] args, object value)
    {
        if (value is System.Collections.IDictionary d)
        {
            object comparer = value.GetType().GetProperty("Comparer")!.GetValue(value)!;
            bool ordinal = ReferenceEquals(comparer, StringComparer.Ordinal);
            if (!ordinal && comparer != (object?)typeof(Comparer<>).MakeGenericType(args[0]).GetProperty("Default")!.GetValue(null)
                && comparer != (object?)typeof(EqualityComparer<>).MakeGenericType(args[0]).GetProperty("Default")!.GetValue(null))
                throw new NotSupportedException($"a {value.GetType()} with comparer {comparer.GetType()} cannot go into a keyframe");
            w.Write(ordinal ? (byte)1 : (byte)0);
            w.Write(d.Count);
            foreach (System.Collections.DictionaryEntry e in d) { Write(w, args[0], e.Key); Write(w, args[1], e.Value); }
            return;
        }
        var list = (System.Collections.IList)value;
        w.Write(list.Count);
        foreach (object? item in list) Write(w, args[0], item);
    }

    private static object ReadCollection(BinaryReader r, Type t, Type[] args)
    {
        if (args.Length == 2)
        {
            byte comparer = r.ReadByte();
            if (comparer > 1) throw new InvalidDataException($"unknown comparer tag {comparer}");
            var d = (System.Collections.IDictionary)(comparer == 1 ? Activator.CreateInstance(t, StringComparer.Ordinal)! : Activator.CreateInstance(t)!);
            int n = r.ReadInt32();
            if (n < 0 || n > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"implausible count {n}");
            for (int i = 0; i < n; i++) d.Add(Read(r, args[0])!, Read(r, args[1]));
            return d;
        }
        var list = (System.Collections.IList)Activator.CreateInstance(t)!;
        int count = r.ReadInt32();
        if (count < 0 || count > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"implausible count {count}");
        for (int i = 0; i < count; i++) list.Add(Read(r, args[0]));
        return list;
    }

    private static void WriteArray(BinaryWriter w, Type element, Array a)
    {
        w.Write(a.Rank == 1 ? a.Length : throw new NotSupportedException("only one-dimensional arrays go into a keyframe"));
        if (a is byte[] bytes) { w.Write(bytes); return; }
        foreach (object? item in a) Write(w, element, item);
    }

    private static Array ReadArray(BinaryReader r, Type element)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > r.BaseStream.Length - r.BaseStream.Position) throw new InvalidDataException($"implausible array length {n}");
        if (element == typeof(byte)) return r.ReadBytes(n);
        var a = Array.CreateInstance(element, n);
        for (int i = 0; i < n; i++) a.SetValue(Read(r, element), i);
        return a;
    }

    private static void WritePrimitive(BinaryWriter w, Type t, object v)
    {
        switch (Type.GetTypeCode(t))
        {
            case TypeCode.Boolean: w.Write((bool)v); break;
            case TypeCode.Byte: w.Write((byte)v); break;
            case TypeCode.SByte: w.Write((sbyte)v); break;
            case TypeCode.Int16: w.Write((short)v); break;
            case TypeCode.UInt16: w.Write((ushort)v); break;
            case TypeCode.Char: w.Write((ushort)(char)v); break;
            case TypeCode.Int32: w.Write((int)v); break;
            case TypeCode.UInt32: w.Write((uint)v); break;
            case TypeCode.Int64: w.Write((long)v); break;
            case TypeCode.UInt64: w.Write((ulong)v); break;
            case TypeCode.Double: w.Write((double)v); break;
            case TypeCode.Single: w.Write((float)v); break;
            default: throw new NotSupportedException($"{t} cannot go into a keyframe");
        }
    }

    private static object ReadPrimitive(BinaryReader r, Type t) => Type.GetTypeCode(t) switch
    {
        TypeCode.Boolean => r.ReadBoolean(),
        TypeCode.Byte => r.ReadByte(),
        TypeCode.SByte => r.ReadSByte(),
        TypeCode.Int16 => r.ReadInt16(),
        TypeCode.UInt16 => r.ReadUInt16(),
        TypeCode.Char => (char)r.ReadUInt16(),
        TypeCode.Int32 => r.ReadInt32(),
        TypeCode.UInt32 => r.ReadUInt32(),
        TypeCode.Int64 => r.ReadInt64(),
        TypeCode.UInt64 => r.ReadUInt64(),
        TypeCode.Double => r.ReadDouble(),
        TypeCode.Single => r.ReadSingle(),
        _ => throw new InvalidDataException($"{t} cannot come out of a keyframe"),
    };
}
