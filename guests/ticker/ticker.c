/* ticker: an idle, timer-driven guest. It arms a one-shot timer 100 us ahead
 * with set_timer_op and blocks with SCHEDOP_block until the VIRQ_TIMER upcall,
 * TICKS times, so set_timer_op, sched_op and upcalls dominate its trace and
 * its run time. `replayvisor bench --guest` uses it for the hypercall round
 * trip and for trace bytes per event. */
#include "guest.h"

const char guest_name[] = "ticker";

#define TICKS 20000
#define PERIOD_NS 100000ull

static volatile int ticks;
static void tick(unsigned port, struct regs *r) { ticks++; }
static struct regs *upcall(struct regs *r) { evtchn_scan(r); return r; }

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_UPCALL, upcall);
    int tport = bind_virq(VIRQ_TIMER, 0);
    CHECKF(tport > 0, "bind_virq VIRQ_TIMER", "rc %d", tport);
    evtchn_set_handler(tport, tick);
    uint64_t t0 = system_time();
    long bad = 0;
    for (int i = 0; i < TICKS; i++) {
        int seen = ticks;
        if (HYPERVISOR_set_timer_op(system_time() + PERIOD_NS) != 0) bad++;
        while (ticks == seen) block();
    }
    events_disable();
    uint64_t t1 = system_time();
    CHECK_EQ(bad, 0, "every set_timer_op returned 0");
    CHECKF(ticks == TICKS, "one VIRQ_TIMER upcall per armed timer", "ticks %d", ticks);
    CHECKF(t1 - t0 >= TICKS * PERIOD_NS, "system time advanced by every period", "t0 %llu t1 %llu", t0, t1);
}
