/* fpu: executes x87 arithmetic, which the emulator does not implement. It must stop with a
 * clear "unsupported instruction" error (exit code 7), never a silently wrong result. */
#include "guest.h"

const char guest_name[] = "fpu";

void guest_main(void)
{
    printf("about to execute fld1; fadd st0,st0\n");
    asm volatile("fninit; fld1; fadd %%st(0), %%st(0); fstp %%st(0)" ::: "memory");
    CHECK(0, "x87 arithmetic should have stopped the emulator");
}
