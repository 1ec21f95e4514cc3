using Replayvisor.Engine.Inputs;
using Replayvisor.Engine.Machine;
using Replayvisor.Record;

namespace Replayvisor.Replay.Tests;

/// <summary>
/// LiveInputs.Periodic (where the recorder decides to flush): called at every
/// <see cref="LiveInputs.PeriodicEvery"/>th poll and at once at a poll that injected console input.
/// </summary>
public class LiveInputsPeriodicTests
{
    private static XenMachine Machine() => new(Guests.Image("echo", false), new XenMachineOptions { MemoryMiB = 32 });

    [Fact]
    public void PeriodicIsCalledAtEverySixteenthPollWithoutInput()
    {
        int calls = 0;
        using var inputs = new LiveInputs(null, null, null, new Checkpoints(0, _ => { })) { Periodic = () => calls++ };
        var machine = Machine();
        var callsAfter = new List<int>();
        for (int poll = 1; poll <= 3 * LiveInputs.PeriodicEvery + 5; poll++)
        {
            Assert.False(inputs.Poll(machine, blocked: poll % 2 == 0));
            callsAfter.Add(calls);
        }
        for (int poll = 1; poll <= callsAfter.Count; poll++)
            Assert.Equal(poll / LiveInputs.PeriodicEvery, callsAfter[poll - 1]);
    }

    [Fact]
    public void PeriodicIsCalledAtThePollThatInjectedInputAndCountsAgainFromThere()
    {
        int calls = 0;
        var stdin = new GatedStream(System.Text.Encoding.ASCII.GetBytes("x"));
        using var inputs = new LiveInputs(stdin, null, null, new Checkpoints(0, _ => { })) { Periodic = () => calls++ };
        var machine = Machine();
        for (int poll = 1; poll < LiveInputs.PeriodicEvery - 1; poll++) Assert.False(inputs.Poll(machine, blocked: false));
        Assert.Equal(0, calls);
        stdin.Open();
        // The stdin thread has queued the byte once it asks for more.
        Assert.True(stdin.Drained.Wait(TimeSpan.FromMinutes(1)), "the stdin thread never read the input");
        Assert.True(inputs.Poll(machine, blocked: false));
        Assert.Equal(1, calls);
        for (int poll = 1; poll < LiveInputs.PeriodicEvery; poll++) inputs.Poll(machine, blocked: false);
        Assert.Equal(1, calls);
        inputs.Poll(machine, blocked: false);
        Assert.Equal(2, calls);
    }

    /// <summary>Stdin whose bytes are readable only once <see cref="Open"/> is called; then end of file.</summary>
    private sealed class GatedStream(byte[] bytes) : Stream
    {
        private readonly ManualResetEventSlim _open = new();
        private bool _done;
        public void Open() => _open.Set();
        /// <summary>Set when the reader asks for more after the bytes (it has queued them by then).</summary>
        public ManualResetEventSlim Drained { get; } = new();
        public override int Read(byte[] buffer, int offset, int count)
        {
            _open.Wait();
            if (_done)
            {
                Drained.Set();
                return 0;
            }
            _done = true;
            bytes.CopyTo(buffer, offset);
            return bytes.Length;
        }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
