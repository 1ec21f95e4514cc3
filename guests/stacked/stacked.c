/* stacked: two deliveries on one exit from Xen. A trap bounced to a handler
 * that leaves events unmasked is followed, on the same exit, by an event
 * upcall bounced over it (handle_exception → create_bounce_frame →
 * test_all_events in Xen's entry.S; docs/xen-abi.md §8.2, §9): the upcall
 * runs first, interrupting the trap handler's first instruction. With a trap
 * entry that masks events (trap_info flags bit 2), the upcall waits for the
 * handler's iret. */
#include "guest.h"

const char guest_name[] = "stacked";

static volatile int hits, traps_before_upcall;
static volatile uint32_t upcall_interrupted;
static void count(unsigned port, struct regs *r) { hits++; }
/* PROBE's expected trap is recorded by trap_expected (last_trap.count): what
 * the upcall sees of it tells which handler ran first. */
static struct regs *upcall(struct regs *r)
{
    traps_before_upcall = last_trap.count;
    upcall_interrupted = r->eip;
    evtchn_scan(r);
    return r;
}

/* An event pending with upcall_mask cleared by a plain store (no re-check
 * hypercall), so nothing delivers it before the int3 enters Xen. */
static void pend_and_unmask(int port)
{
    events_disable();
    CHECK_EQ(evtchn_send(port), 0, "send with upcall_mask=1");
    CHECK_EQ(vcpu0->evtchn_upcall_pending, 1, "upcall_pending set, nothing delivered");
    traps_before_upcall = -1;
    upcall_interrupted = 0;
    barrier();
    vcpu0->evtchn_upcall_mask = 0;
    barrier();
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_UPCALL, upcall);
    int ipi = bind_ipi(0);
    CHECKF(ipi > 0, "bind_ipi vcpu 0", "rc %d", ipi);
    evtchn_set_handler(ipi, count);

    /* int3 through a trap gate (DPL 3, events left unmasked). */
    set_trap(3, 3, trap_expected);
    pend_and_unmask(ipi);
    PROBE(3, "int3");
    events_disable();
    expect_trap("#BP from int3 with an event pending", 3, 0, probe_end);
    CHECK_EQ(hits, 1, "the pending event arrived on the #BP exit");
    CHECKF(traps_before_upcall == 0, "the upcall ran first, over the #BP frame",
           "traps before the upcall %d", traps_before_upcall);
    CHECKF(upcall_interrupted == (uint32_t)trap_stub(3), "the upcall interrupted the #BP handler's first instruction",
           "eip 0x%08x stub 0x%08x", upcall_interrupted, (uint32_t)trap_stub(3));

    /* The same through an interrupt gate (flags DPL 3 | 4): Xen masks events
     * for the handler, so the upcall comes at the handler's iret. */
    set_trap(3, 3 | 4, trap_expected);
    pend_and_unmask(ipi);
    PROBE(3, "int3");
    events_disable();
    expect_trap("#BP from int3 through an event-masking entry", 3, 0, probe_end);
    CHECK_EQ(hits, 2, "the pending event arrived after the handler");
    CHECKF(traps_before_upcall == 1, "the handler ran first, the upcall at its iret",
           "traps before the upcall %d", traps_before_upcall);
    CHECKF(upcall_interrupted == probe_end, "the upcall interrupted the code after the int3",
           "eip 0x%08x probe_end 0x%08x", upcall_interrupted, probe_end);
}
