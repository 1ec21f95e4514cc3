/* variant: two builds of one kernel that differ in one function, report_progress (built as
 * variant-a.elf and, with -DVARIANT_B, variant-b.elf). `replayvisor diff` of their traces must
 * name report_progress and the extra hypercall it makes in build B (tests/Cli.Tests DiffTests). */
#include "guest.h"

const char guest_name[] = "variant";

static unsigned checksum(unsigned seed)
{
    unsigned h = seed * 2654435761u;
    for (int i = 0; i < 1000; i++) h = (h ^ (h >> 13)) * 0x5bd1e995u + (unsigned)i;
    return h;
}

__attribute__((noinline)) static void report_progress(int step, unsigned sum)
{
#ifdef VARIANT_B
    /* Build B also asks for the extra version string at step 2. */
    if (step == 2) {
        char extra[16];
        HYPERVISOR_xen_version(1 /* XENVER_extraversion */, extra);
    }
#endif
    printf("step %d: checksum %08x\n", step, sum);
}

void guest_main(void)
{
    for (int step = 0; step < 5; step++)
        report_progress(step, checksum((unsigned)step));
    CHECK(HYPERVISOR_xen_version(XENVER_pagesize, 0) == 4096, "pagesize is 4096");
}
