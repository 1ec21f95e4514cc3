using Replayvisor.Engine.State;

namespace Replayvisor.Engine.Xen;

/// <summary>The PIT channel 2 registers as plain data.</summary>
public readonly record struct PitState(byte Port61, ushort Reload, ulong StartNs, bool WriteHigh, bool ReadHigh, bool Latched, ushort Latch);

/// <summary>
/// The bit of the i8254 PIT Xen emulates for PV guests (ports 0x42, 0x43, 0x61): channel 2 with its
/// gate and output, enough for a TSC calibration loop. Counts at 1.193182 MHz of Xen system time.
/// Only modes 0 (count down once) and the lsb/msb access pattern are modelled.
/// </summary>
public sealed class PitChannel2 : IStateHashable
{
    private const ulong PitHz = 1_193_182;
    private byte _port61;
    private ushort _reload;
    private ulong _startNs;
    private bool _writeHigh, _readHigh, _latched;
    private ushort _latch;

    public PitState Snapshot() => new(_port61, _reload, _startNs, _writeHigh, _readHigh, _latched, _latch);

    public void Restore(in PitState s)
    {
        _port61 = s.Port61; _reload = s.Reload; _startNs = s.StartNs;
        _writeHigh = s.WriteHigh; _readHigh = s.ReadHigh; _latched = s.Latched; _latch = s.Latch;
    }

    public void WriteState(CanonicalWriter w)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.Tag("pit2");
        w.U8(_port61); w.U16(_reload); w.U64(_startNs);
        w.Bool(_writeHigh); w.Bool(_readHigh); w.Bool(_latched); w.U16(_latch);
    }

    private ushort Count(ulong nowNs)
    {
        if ((_port61 & 1) == 0) return _reload;
        ulong ticks = (ulong)((UInt128)(nowNs - _startNs) * PitHz / 1_000_000_000);
        return ticks >= _reload ? (ushort)0 : (ushort)(_reload - ticks);
    }

    public byte Read(ushort port, ulong nowNs)
    {
        switch (port)
        {
            case 0x61:
                bool output = (_port61 & 1) != 0 && Count(nowNs) == 0;
                return (byte)((_port61 & 0x0F) | (output ? 0x20 : 0));
            case 0x42:
            {
                ushort v = _latched ? _latch : Count(nowNs);
                byte b = _readHigh ? (byte)(v >> 8) : (byte)v;
                if (_readHigh) _latched = false;
                _readHigh = !_readHigh;
                return b;
            }
            default:
                return 0xFF;
        }
    }

    public void Write(ushort port, byte value, ulong nowNs)
    {
        switch (port)
        {
            case 0x61:
                if ((value & 1) != 0 && (_port61 & 1) == 0) _startNs = nowNs;
                _port61 = (byte)(value & 0x0F);
                break;
            case 0x43:
                if ((value >> 6) != 2) break; // only channel 2
                if ((value & 0x30) == 0) { _latch = Count(nowNs); _latched = true; _readHigh = false; }
                else { _writeHigh = false; _readHigh = false; }
                break;
            case 0x42:
                if (!_writeHigh) _reload = (ushort)((_reload & 0xFF00) | value);
                else { _reload = (ushort)((_reload & 0x00FF) | (value << 8)); _startNs = nowNs; }
                _writeHigh = !_writeHigh;
                break;
        }
    }
}
