using MessagePack;
using MessagePack.Resolvers;

namespace Replayvisor.Engine.Trace;

/// <summary>The one set of MessagePack options used for every structure in a trace.</summary>
internal static class TraceMessagePack
{
    public static readonly MessagePackSerializerOptions Options = MessagePackSerializerOptions.Standard
        .WithResolver(CompositeResolver.Create(EquatableArrayResolver.Instance, StandardResolverAllowPrivate.Instance))
        .WithSecurity(MessagePackSecurity.UntrustedData);
}
