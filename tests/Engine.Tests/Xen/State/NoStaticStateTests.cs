using System.Reflection;
using Replayvisor.Engine.Xen;

namespace Replayvisor.Engine.Tests.Xen.State;

/// <summary>docs/architecture.md, determinism contract 5: no state lives in statics (the Xen model and its memory manager).</summary>
public class NoStaticStateTests
{
    /// <summary>Static readonly fields whose objects are immutable after construction.</summary>
    private static readonly HashSet<string> ImmutableStatics =
    [
        "Replayvisor.Engine.Xen.Hypercalls.HypercallTable.Instance", // rows filled in the constructor, no mutator
    ];

    [Fact]
    public void TheXenModelHasNoMutableStatics()
    {
        var offenders = new List<string>();
        foreach (var t in typeof(Hypervisor).Assembly.GetTypes())
        {
            if (t.Namespace is not { } ns || !(ns == "Replayvisor.Engine.Xen" || ns.StartsWith("Replayvisor.Engine.Xen.", StringComparison.Ordinal))) continue;
            if (t.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute))) continue;
            foreach (var f in t.GetFields(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (f.IsLiteral) continue; // const
                string name = $"{t.FullName}.{f.Name}";
                bool immutable = f.IsInitOnly && (f.FieldType.IsPrimitive || f.FieldType.IsEnum || f.FieldType == typeof(string)
                    || ImmutableStatics.Contains(name));
                if (!immutable) offenders.Add(name);
            }
        }
        Assert.Empty(offenders);
    }
}
