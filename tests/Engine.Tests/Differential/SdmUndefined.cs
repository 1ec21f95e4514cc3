using Iced.Intel;
using Replayvisor.Engine.Cpu;

namespace Replayvisor.Engine.Tests.Differential;

/// <summary>
/// The one table of what the Intel SDM (vol. 2, each instruction's "Flags Affected" section)
/// leaves undefined. Generators ask it for every instruction whose flags stay live at the end of
/// a snippet, and never let a later instruction consume an undefined flag.
/// </summary>
public static class SdmUndefined
{
    private const uint CF = Fl.CF, PF = Fl.PF, AF = Fl.AF, ZF = Fl.ZF, SF = Fl.SF, OF = Fl.OF, All = Fl.Arith;

    /// <summary>
    /// Flags left undefined by one instruction of the given operand size (bytes). For shifts and
    /// rotates pass the count as encoded or as in CL (it is masked to 5 bits here, as the CPU does).
    /// </summary>
    public static uint Flags(Mnemonic m, int size, int count = -1)
    {
        int c = count & 0x1F;
        int bits = size * 8;
        switch (m)
        {
            // AND/OR/XOR/TEST: "The OF and CF flags are cleared; ... The state of the AF flag is undefined."
            case Mnemonic.And: case Mnemonic.Or: case Mnemonic.Xor: case Mnemonic.Test:
                return AF;
            // MUL, IMUL: "The SF, ZF, AF, and PF flags are undefined."
            case Mnemonic.Mul: case Mnemonic.Imul:
                return SF | ZF | AF | PF;
            // DIV, IDIV: "The CF, OF, SF, ZF, AF, and PF flags are undefined."
            case Mnemonic.Div: case Mnemonic.Idiv:
                return All;
            // DAA, DAS: "The OF flag is undefined."
            case Mnemonic.Daa: case Mnemonic.Das:
                return OF;
            // AAA, AAS: "The OF, SF, ZF, and PF flags are undefined."
            case Mnemonic.Aaa: case Mnemonic.Aas:
                return OF | SF | ZF | PF;
            // AAM, AAD: "The OF, AF, and CF flags are undefined."
            case Mnemonic.Aam: case Mnemonic.Aad:
                return OF | AF | CF;
            // BT/BTS/BTR/BTC: "The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined."
            case Mnemonic.Bt: case Mnemonic.Bts: case Mnemonic.Btr: case Mnemonic.Btc:
                return OF | SF | AF | PF;
            // BSF, BSR: "The CF, OF, SF, AF, and PF flags are undefined."
            case Mnemonic.Bsf: case Mnemonic.Bsr:
                return CF | OF | SF | AF | PF;
            // SAL/SAR/SHL/SHR: a masked count of 0 affects no flag; otherwise AF is undefined, OF is
            // defined only for 1-bit shifts, and CF is undefined for SHL/SHR when count >= width.
            case Mnemonic.Shl: case Mnemonic.Sal: case Mnemonic.Shr: case Mnemonic.Sar:
            {
                if (c == 0) return 0;
                uint u = AF;
                if (c != 1) u |= OF;
                if (m != Mnemonic.Sar && c >= bits) u |= CF;
                return u;
            }
            // RCL/RCR/ROL/ROR: "The OF flag is defined only for the 1-bit rotates; it is undefined in all
            // other cases (except RCL and RCR instructions only: a zero-bit rotate does nothing)."
            // A masked count of 0 affects no flag (pseudo-code: IF (COUNT & COUNTMASK) = 1 ... ELSE OF undefined).
            case Mnemonic.Rol: case Mnemonic.Ror: case Mnemonic.Rcl: case Mnemonic.Rcr:
                return c == 0 ? 0 : c == 1 ? 0 : OF;
            // SHLD/SHRD: count 0: flags unaffected; count > operand size: result and flags undefined;
            // otherwise OF is defined only for 1-bit shifts and AF is undefined.
            case Mnemonic.Shld: case Mnemonic.Shrd:
                if (c == 0) return 0;
                if (c > bits) return All;
                return AF | (c != 1 ? OF : 0);
            default:
                return 0;
        }
    }

    /// <summary>SHLD/SHRD with a masked count above the operand size: "the destination operand is undefined".</summary>
    public static bool ShiftDoubleResultUndefined(int size, int count) => (count & 0x1F) > size * 8;

    /// <summary>BSF/BSR: "If the content of the source operand is 0, the content of the destination operand is undefined."</summary>
    public static bool BitScanResultUndefined(uint source) => source == 0;

    /// <summary>BSWAP with a 16-bit operand: "the result is undefined" (never generated).</summary>
    public const bool Bswap16Undefined = true;
}
