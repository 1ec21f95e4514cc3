namespace Replayvisor.Cli;

/// <summary>
/// A write-only stream that turns the operating system's write errors (disk full, /dev/full, a
/// closed terminal, a closed descriptor) into the one-line I/O error of the command (exit 74) naming what could not be written.
/// </summary>
public sealed class WriteGuard(Stream inner, string name) : Stream
{
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Write(byte[] buffer, int offset, int count) => Guard(() => inner.Write(buffer, offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try { inner.Write(buffer); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(e); }
    }

    public override void Flush() => Guard(inner.Flush);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) Guard(inner.Dispose);
        base.Dispose(disposing);
    }

    private void Guard(Action write)
    {
        try { write(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw Failed(e); }
    }

    /// <remarks>A closed descriptor (`>&-`) comes as UnauthorizedAccessException (EBADF).</remarks>
    private CliException Failed(Exception e) => new(ExitCodes.IoError, $"{name}: cannot write: {e.Message}");
}
