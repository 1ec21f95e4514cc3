using System.Net;
using System.Net.Sockets;
using Replayvisor.Engine.Boot;
using Replayvisor.Engine.Trace;
using Replayvisor.Replay.TimeTravel;

namespace Replayvisor.Cli.Gdb;

/// <summary>`replayvisor gdbserver trace.rvt [--port N]`: serve one gdb connection on 127.0.0.1.</summary>
public static class GdbServerCommand
{
    public static int Run(string path, int port, uint snapshotMemoryMiB, TextWriter stderr, bool log = false)
    {
        if (port is < 0 or > 65535) throw new CliException(ExitCodes.Usage, $"--port {port}: not a TCP port (0 picks a free one)");
        using var reader = TraceFiles.Open(path);
        TimeTravelSession session;
        try { session = new TimeTravelSession(reader, new TimeTravelOptions { SnapshotMemoryBytes = snapshotMemoryMiB * 1024L * 1024 }); }
        catch (BootImageException e) { throw new CliException(ExitCodes.TraceDamaged, $"{path}: the embedded guest image does not load: {e.Message}"); }
        var listener = new TcpListener(IPAddress.Loopback, port);
        try { listener.Start(1); }
        catch (SocketException e) { throw new CliException(ExitCodes.IoError, $"cannot listen on 127.0.0.1:{port}: {e.Message}"); }
        int actual = ((IPEndPoint)listener.LocalEndpoint).Port;
        stderr.WriteLine($"gdbserver: listening on 127.0.0.1:{actual} (in gdb: target remote 127.0.0.1:{actual})");
        stderr.Flush();
        using var client = listener.AcceptTcpClient();
        listener.Stop();
        client.NoDelay = true;
        using var conn = new RspConnection(client.GetStream(), session.Interrupt);
        if (log) conn.OnPacket = packet => { lock (stderr) { stderr.WriteLine("gdbserver: < " + packet); stderr.Flush(); } };
        try { new GdbStub(session, conn).Serve(); }
        catch (TraceFormatException e) { throw TraceFiles.FromFormat(path, e); }
        catch (IOException) { } // gdb closed the connection while a reply was on its way
        stderr.WriteLine($"gdbserver: gdb disconnected at instruction {session.Icount}");
        return ExitCodes.Ok;
    }
}
