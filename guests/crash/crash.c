/* crash: a guest that fails on purpose, to show how a failing guest ends (exit code 3):
 * one failing check prints FAIL and the guest shuts down with SHUTDOWN_crash. */
#include "guest.h"

const char guest_name[] = "crash";

void guest_main(void)
{
    CHECK(1 + 1 == 2, "arithmetic works");
    CHECK(HYPERVISOR_xen_version(XENVER_version, 0) == 0x00020000, "deliberately wrong: xen_version is 2.0");
}
