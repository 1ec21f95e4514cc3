/* events: VIRQ_TIMER via set_timer_op + SCHEDOP_block, masking with the
 * pending re-check, EVTCHNOP_unmask, IPI to self, SCHEDOP_poll with a
 * timeout, alloc_unbound, status and close (§9). */
#include "guest.h"

const char guest_name[] = "events";

static volatile int hits[NR_EVENT_CHANNELS];
static volatile int upcalls;
static void count(unsigned port, struct regs *r) { hits[port]++; }
static struct regs *upcall(struct regs *r) { upcalls++; evtchn_scan(r); return r; }

static long status(unsigned port, struct evtchn_status *st)
{
    memset(st, 0, sizeof *st);
    st->dom = DOMID_SELF;
    st->port = port;
    return HYPERVISOR_event_channel_op(EVTCHNOP_status, st);
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_UPCALL, upcall);
    struct shared_info *s = HYPERVISOR_shared_info;
    CHECK_EQ(vcpu0->evtchn_upcall_mask, 1, "events masked at boot");

    /* Timer: one-shot 1 ms ahead, then block until the upcall. */
    int tport = bind_virq(VIRQ_TIMER, 0);
    CHECKF(tport > 0, "bind_virq VIRQ_TIMER", "rc %d", tport);
    CHECK_EQ(bind_virq(VIRQ_TIMER, 0), -EEXIST, "binding VIRQ_TIMER twice gives -EEXIST");
    evtchn_set_handler(tport, count);
    uint64_t t0 = system_time();
    CHECK_EQ(HYPERVISOR_set_timer_op(t0 + 1000000), 0, "set_timer_op 1 ms ahead");
    while (!hits[tport]) block();
    events_disable();
    uint64_t t1 = system_time();
    CHECKF(hits[tport] >= 1 && upcalls >= 1, "VIRQ_TIMER upcall after SCHEDOP_block", "hits %d upcalls %d", hits[tport], upcalls);
    CHECKF(t1 > t0, "system time advances", "t0 %llu t1 %llu", t0, t1);
    CHECK_EQ(vcpu0->evtchn_upcall_mask, 1, "mask set again by the guest");

    /* IPI to self while unmasked: delivered on the hypercall's return. */
    int ipi = bind_ipi(0);
    CHECKF(ipi > 0 && ipi != tport, "bind_ipi vcpu 0", "rc %d", ipi);
    evtchn_set_handler(ipi, count);
    events_enable();
    CHECK_EQ(evtchn_send(ipi), 0, "EVTCHNOP_send to the IPI port");
    events_disable();
    CHECK_EQ(hits[ipi], 1, "IPI to self delivered on return from send");

    /* Port masked: pending only; local unmask + xen_version(0) delivers it. */
    mask_evtchn(ipi);
    events_enable();
    CHECK_EQ(evtchn_send(ipi), 0, "send to a masked port");
    CHECK_EQ(hits[ipi], 1, "masked port: no upcall");
    CHECK_EQ(test_bit(ipi, s->evtchn_pending), 1, "masked port: pending bit set");
    unmask_evtchn(ipi);
    events_disable();
    CHECK_EQ(hits[ipi], 2, "local unmask with pending re-check delivers");

    /* Same with EVTCHNOP_unmask: Xen sets upcall_pending and delivers. */
    mask_evtchn(ipi);
    CHECK_EQ(evtchn_send(ipi), 0, "send to a masked port (events off)");
    events_enable();
    CHECK_EQ(hits[ipi], 2, "still masked: nothing delivered");
    CHECK_EQ(evtchn_unmask_hc(ipi), 0, "EVTCHNOP_unmask");
    events_disable();
    CHECK_EQ(hits[ipi], 3, "EVTCHNOP_unmask delivers the pending event");
    CHECK_EQ(test_bit(ipi, s->evtchn_mask), 0, "mask bit cleared by EVTCHNOP_unmask");

    /* Upcall mask: events pile up while masked and arrive when unmasked. */
    CHECK_EQ(evtchn_send(ipi), 0, "send with upcall_mask=1");
    CHECK_EQ(hits[ipi], 3, "no upcall while upcall_mask=1");
    CHECK_EQ(vcpu0->evtchn_upcall_pending, 1, "upcall_pending set");
    events_enable();
    events_disable();
    CHECK_EQ(hits[ipi], 4, "clearing the mask + xen_version(0) delivers");

    /* Status of each kind of port. */
    struct evtchn_status st;
    CHECKF(status(tport, &st) == 0 && st.status == EVTCHNSTAT_virq && st.vcpu == 0 && st.u.virq == VIRQ_TIMER,
           "status of the timer port: virq 0", "status %u vcpu %u virq %u", st.status, st.vcpu, st.u.virq);
    CHECKF(status(ipi, &st) == 0 && st.status == EVTCHNSTAT_ipi && st.vcpu == 0,
           "status of the IPI port: ipi", "status %u vcpu %u", st.status, st.vcpu);
    struct evtchn_alloc_unbound au = { DOMID_SELF, 0, 0 };
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &au), 0, "alloc_unbound for dom0");
    CHECKF(status(au.port, &st) == 0 && st.status == EVTCHNSTAT_unbound && st.u.unbound_dom == 0,
           "status of the unbound port", "port %u status %u dom %u", au.port, st.status, st.u.unbound_dom);
    CHECK_EQ(evtchn_send(au.port), 0, "send to an unbound port is dropped");
    CHECKF(status(0, &st) == 0 && st.status == EVTCHNSTAT_closed, "port 0 reads closed", "status %u", st.status);

    /* Poll: close the timer port so nothing else wakes us, then poll the
     * unbound port with a 2 ms timeout (events stay masked; poll ignores the mask). */
    CHECK_EQ(evtchn_close(tport), 0, "close the timer port");
    CHECKF(status(tport, &st) == 0 && st.status == EVTCHNSTAT_closed, "closed port reads closed", "status %u", st.status);
    CHECK_EQ(evtchn_close(tport), -EINVAL, "closing a closed port gives -EINVAL");
    CHECK_EQ(evtchn_send(tport), -EINVAL, "send to a closed port gives -EINVAL");
    uint32_t ports[1] = { au.port };
    uint64_t deadline = system_time() + 2000000;
    struct sched_poll poll = { ports, 1, deadline };
    CHECK_EQ(HYPERVISOR_sched_op(SCHEDOP_poll, &poll), 0, "SCHEDOP_poll with a timeout returns 0");
    uint64_t now = system_time();
    CHECKF(now >= deadline, "SCHEDOP_poll waited for the timeout", "now %llu deadline %llu", now, deadline);

    /* Poll on a pending port returns at once. */
    mask_evtchn(ipi);
    CHECK_EQ(evtchn_send(ipi), 0, "send to the masked IPI port");
    ports[0] = ipi;
    poll.timeout = 0;
    CHECK_EQ(HYPERVISOR_sched_op(SCHEDOP_poll, &poll), 0, "SCHEDOP_poll on a pending port returns 0");
    CHECK_EQ(evtchn_close(ipi), 0, "close the IPI port");
    CHECK_EQ(evtchn_close(au.port), 0, "close the unbound port");
    CHECK_EQ(hits[ipi], 4, "no stray deliveries");
}
