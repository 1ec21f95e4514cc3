using Replayvisor.Engine.Memory;

namespace Replayvisor.Engine.Boot;

/// <summary>Writes a domain's pseudo-physical memory through its p2m (each page may be anywhere in machine memory).</summary>
public sealed class GuestPhysicalView(PhysicalMemory memory, IReadOnlyList<uint> p2m)
{
    public PhysicalMemory Memory => memory;

    public ulong MachineAddress(ulong gpa) => ((ulong)p2m[(int)(gpa >> 12)] << 12) | (gpa & 0xFFF);

    public void WriteBytes(ulong gpa, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            int chunk = (int)Math.Min((ulong)data.Length, XenLayout.PageSize - (gpa & 0xFFF));
            memory.WriteBytes(MachineAddress(gpa), data[..chunk]);
            data = data[chunk..];
            gpa += (ulong)chunk;
        }
    }

    public void Write32(ulong gpa, uint value) => memory.Write32(MachineAddress(gpa), value);
    public uint Read32(ulong gpa) => memory.Read32(MachineAddress(gpa));
}
