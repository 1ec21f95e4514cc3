/* shared_info mapping, event channels and time (§4.2, §9). */
#include "guest.h"

/* shared_info is mapped over this bss page (the page's own frame is simply
 * no longer mapped here), as mini-os does with update_va_mapping. */
static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
struct shared_info *HYPERVISOR_shared_info;
static evtchn_fn port_handlers[NR_EVENT_CHANNELS];

void map_shared_info(void)
{
    long rc = HYPERVISOR_update_va_mapping((uint32_t)shared_info_page,
            start_info->shared_info | _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY, UVMF_INVLPG);
    if (rc) { printf("FAIL %s: map shared_info (rc %ld)\n", guest_name, rc); crash(); }
    HYPERVISOR_shared_info = (struct shared_info *)shared_info_page;
}

void evtchn_set_handler(unsigned port, evtchn_fn fn) { port_handlers[port] = fn; }

/* Clear upcall_pending, take the selector word with xchg, then walk
 * pending & ~mask of each selected word, clearing each bit before its handler. */
void evtchn_scan(struct regs *r)
{
    struct shared_info *s = HYPERVISOR_shared_info;
    while (vcpu0->evtchn_upcall_pending) {
        vcpu0->evtchn_upcall_pending = 0;
        uint32_t sel = __atomic_exchange_n(&vcpu0->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
        while (sel) {
            unsigned w = __builtin_ctz(sel);
            sel &= sel - 1;
            uint32_t bits;
            while ((bits = s->evtchn_pending[w] & ~s->evtchn_mask[w]) != 0) {
                unsigned port = w * 32 + __builtin_ctz(bits);
                __atomic_fetch_and(&s->evtchn_pending[w], ~(1u << (port % 32)), __ATOMIC_SEQ_CST);
                if (port_handlers[port]) port_handlers[port](port, r);
            }
        }
    }
}

int bind_virq(unsigned virq, unsigned vcpu)
{
    struct evtchn_bind_virq op = { virq, vcpu, 0 };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &op);
    return rc ? (int)rc : (int)op.port;
}

int bind_ipi(unsigned vcpu)
{
    struct evtchn_bind_ipi op = { vcpu, 0 };
    long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &op);
    return rc ? (int)rc : (int)op.port;
}

long evtchn_send(unsigned port)  { struct evtchn_port_op op = { port }; return HYPERVISOR_event_channel_op(EVTCHNOP_send, &op); }
long evtchn_close(unsigned port) { struct evtchn_port_op op = { port }; return HYPERVISOR_event_channel_op(EVTCHNOP_close, &op); }
long evtchn_unmask_hc(unsigned port) { struct evtchn_port_op op = { port }; return HYPERVISOR_event_channel_op(EVTCHNOP_unmask, &op); }

void mask_evtchn(unsigned port)
{
    __atomic_fetch_or(&HYPERVISOR_shared_info->evtchn_mask[port / 32], 1u << (port % 32), __ATOMIC_SEQ_CST);
}

/* Local unmask as Linux does: clear the mask bit, and if the port is pending
 * set the selector bit and upcall_pending ourselves; the next hypercall (or
 * events_enable) delivers it. */
void unmask_evtchn(unsigned port)
{
    struct shared_info *s = HYPERVISOR_shared_info;
    __atomic_fetch_and(&s->evtchn_mask[port / 32], ~(1u << (port % 32)), __ATOMIC_SEQ_CST);
    if (test_bit(port, s->evtchn_pending)) {
        __atomic_fetch_or(&vcpu0->evtchn_pending_sel, 1u << (port / 32), __ATOMIC_SEQ_CST);
        vcpu0->evtchn_upcall_pending = 1;
        if (!vcpu0->evtchn_upcall_mask) HYPERVISOR_xen_version(XENVER_version, 0);
    }
}

/* Clearing the mask does not deliver anything by itself; xen_version(0, NULL)
 * forces a return to guest where a pending upcall is delivered (§9). */
void events_enable(void)
{
    barrier();
    vcpu0->evtchn_upcall_mask = 0;
    barrier();
    if (vcpu0->evtchn_upcall_pending) HYPERVISOR_xen_version(XENVER_version, 0);
}

void events_disable(void) { vcpu0->evtchn_upcall_mask = 1; barrier(); }

/* SCHEDOP_block clears upcall_mask; an upcall arrives before it returns. */
void block(void) { HYPERVISOR_sched_op(SCHEDOP_block, 0); }

static inline uint64_t rdtsc(void) { uint32_t lo, hi; asm volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }

/* system_time + ((tsc - tsc_timestamp) << shift) * mul >> 32, read under the version seqlock. */
uint64_t system_time(void)
{
    volatile struct vcpu_time_info *t = &vcpu0->time;
    uint32_t ver, mul;
    uint64_t base, stamp, delta;
    int shift;
    do {
        ver = t->version;
        barrier();
        base = t->system_time;
        stamp = t->tsc_timestamp;
        mul = t->tsc_to_system_mul;
        shift = t->tsc_shift;
        delta = rdtsc() - stamp;
        barrier();
    } while ((ver & 1) || ver != t->version);
    if (shift < 0) delta >>= -shift; else delta <<= shift;
    uint64_t lo = ((delta & 0xFFFFFFFFu) * mul) >> 32;
    uint64_t hi = (delta >> 32) * mul;
    return base + hi + lo;
}
