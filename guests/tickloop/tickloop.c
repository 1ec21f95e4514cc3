/* tickloop: a timer-driven guest that never ends, for time-travel figures on
 * long traces (`make bench-guests`, then `replayvisor record build/tickloop.elf
 * --max-instructions 1000000000`; not part of `make all`, the tests or CI).
 * It arms a one-shot timer PERIOD_NS ahead with set_timer_op and, until the
 * VIRQ_TIMER upcall, keeps rewriting a 256 KiB table one word in 64 at a
 * time, page after page, forever: every tick is a set_timer_op, an upcall and
 * an iret, and memory keeps changing under snapshots. */
#include "guest.h"

const char guest_name[] = "tickloop";

#define PERIOD_NS 1000ull
#define PAGES 64

static volatile int ticks;
static unsigned table[PAGES][1024];
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
    events_enable();
    unsigned page = 0, sum = 0;
    for (;;) {
        int seen = ticks;
        long rc = HYPERVISOR_set_timer_op(system_time() + PERIOD_NS);
        if (rc != 0) {
            CHECKF(0, "set_timer_op", "rc %ld after %d ticks", rc, ticks);
            return;
        }
        while (ticks == seen) {
            unsigned *p = table[page];
            for (int i = 0; i < 1024; i += 64) { sum += p[i] + (unsigned)i; p[i] = sum ^ (unsigned)seen; }
            page = (page + 1) % PAGES;
        }
    }
}
