/* longrun: about 10^8 instructions of computing for `replayvisor bench --diff`. It computes
 * checksums for ROUNDS rounds, printing one line every 50, and from round TIMER_ROUND on also
 * binds and takes a 1 ms VIRQ_TIMER (re-armed with set_timer_op in the handler). Two recordings with
 * different --chaos seeds get their first timer delayed differently, so they part ways late in
 * a long trace: the case whose pinpoint cost should not depend on where in the trace it is. */
#include "guest.h"

const char guest_name[] = "longrun";

#define ROUNDS      1000
#define TIMER_ROUND 900
#define PERIOD_NS   1000000ull
#define VCPUOP_stop_periodic_timer 7   /* Xen public/vcpu.h */

static volatile int ticks;
static void tick(unsigned port, struct regs *r)
{
    ticks++;
    HYPERVISOR_set_timer_op(system_time() + PERIOD_NS);
}
static struct regs *upcall(struct regs *r) { evtchn_scan(r); return r; }

static unsigned checksum(unsigned seed)
{
    unsigned h = seed * 2654435761u;
    for (int i = 0; i < 13000; i++) h = (h ^ (h >> 13)) * 0x5bd1e995u + (unsigned)i;
    return h;
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_UPCALL, upcall);
    /* No periodic timer either: until TIMER_ROUND nothing fires that a chaos delay could move. */
    CHECK(HC3(HC_vcpu_op, VCPUOP_stop_periodic_timer, 0, 0) == 0, "VCPUOP_stop_periodic_timer");
    unsigned sum = 0;
    for (int round = 0; round < ROUNDS; round++) {
        if (round == TIMER_ROUND) {
            int tport = bind_virq(VIRQ_TIMER, 0);
            CHECKF(tport > 0, "bind_virq VIRQ_TIMER", "rc %d", tport);
            evtchn_set_handler(tport, tick);
            HYPERVISOR_set_timer_op(system_time() + PERIOD_NS);
            events_enable();
        }
        sum ^= checksum((unsigned)round);
        if (round % 50 == 0) printf("round %d: checksum %08x, %d ticks\n", round, sum, ticks);
    }
    events_disable();
    CHECKF(ticks > 0, "the timer ticked in the last rounds", "ticks %d", ticks);
}
