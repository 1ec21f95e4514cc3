// Counts the hypercalls of each kind in a Replayvisor trace, using only the Replayvisor.Trace package.
//   dotnet run -- trace.rvt
using Replayvisor.Engine.Trace;

using var reader = TraceReader.Open(File.OpenRead(args[0]));
Console.WriteLine($"{reader.Header.GuestImageName}: {reader.Summary?.FinalIcount ?? 0} instructions, trace format {reader.FormatVersion}");
var counts = new SortedDictionary<int, int>();
foreach (var traceEvent in reader.ReadEvents())
    if (traceEvent is HypercallEvent hypercall)
        counts[hypercall.Number] = counts.GetValueOrDefault(hypercall.Number) + 1;
// Hypercall numbers are Xen's __HYPERVISOR_* (xen/include/public/xen.h): 2 mmu_update, 18 console_io, 29 sched_op, ...
foreach (var (number, count) in counts)
    Console.WriteLine($"hypercall {number,2}: {count}");
