/* preempt: long batches are preempted as Xen preempts them when an event needs delivering
 * (hypercall_preempt_check), and continue where they stopped (hypercall continuations):
 * an mmu_update whose first request unmasks a pending event stops after it with *done = 1,
 * the upcall runs with EIP on the int 0x82, and the re-issued call (EBX past the done
 * request, ECX = 2 | MMU_UPDATE_PREEMPTED) finishes; a multicall stops before the entry
 * after an event send; a preempted mmu_update inside a multicall leaves its continuation in
 * the entry. A multicall's iret entry ends the batch on 4.19 (the PAE build) and returns the
 * restored EAX; on 3.1 (non-PAE) the batch runs on and returns 0. */
#include "guest.h"

const char guest_name[] = "preempt";

#define PREEMPTED 0x80000000u
static int xen4;
static unsigned ipi;
static volatile int upcalls;
static volatile int done_seen;
static int *volatile done_ptr;
static struct multicall_entry mc[3];
static volatile int32_t mc0_result_seen, mc1_result_seen;
static volatile uint32_t mc0_arg1_seen;

static void on_ipi(unsigned port, struct regs *r)
{
    upcalls++;
    if (done_ptr) done_seen = *done_ptr;
    mc0_result_seen = mc[0].result;
    mc0_arg1_seen = mc[0].args[1];
    mc1_result_seen = mc[1].result;
}

/* A request that stores into vcpu_info[0] (a plain writable word of the shared_info frame):
 * upcall_pending 1, upcall_mask 0 (PAE: also the pending selector in the same 8 bytes). */
static struct mmu_update unmask_req(void)
{
    struct mmu_update u;
    u.ptr = (uint64_t)start_info->shared_info | MMU_NORMAL_PT_UPDATE;
#ifdef CONFIG_PAE
    u.val = 1 | ((uint64_t)vcpu0->evtchn_pending_sel << 32);
#else
    u.val = 1;
#endif
    return u;
}

/* A request with no effect: M2P[mfn] = the pfn it already has. */
static struct mmu_update noop_req(void)
{
    uint32_t mfn = virt_to_mfn(_text);
    struct mmu_update u = { ((uint64_t)mfn << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE, mfn_to_pfn(mfn) };
    return u;
}

static struct mmu_update reqs[3];
static int done;

static void pend_masked(void)
{
    events_disable();
    evtchn_send(ipi);
    CHECK(vcpu0->evtchn_upcall_pending && vcpu0->evtchn_upcall_mask, "an IPI pending while events are masked");
}

static void mmu_update_preempted(void)
{
    done = 0; done_ptr = &done; upcalls = 0; done_seen = -1;
    pend_masked();
    reqs[0] = unmask_req(); reqs[1] = noop_req(); reqs[2] = noop_req();
    uint32_t b = (uint32_t)reqs, c = 3, d = (uint32_t)&done, s = DOMID_SELF;
    long r = (long)(hypercall_page + HC_mmu_update * 32);
    asm volatile("call *%%eax" : "+a"(r), "+b"(b), "+c"(c), "+d"(d), "+S"(s) : : "edi", "memory", "cc");
    CHECK_EQ(r, 0, "mmu_update preempted and continued returns 0");
    CHECK_EQ(done, 3, "*done counts all three requests");
    CHECK_EQ(upcalls, 1, "the event was delivered in between");
    CHECK_EQ(done_seen, 1, "the upcall saw *done = 1 (the partial count)");
    CHECKF(b == (uint32_t)reqs + 16 && c == (2 | PREEMPTED), "the continuation re-issued EBX past one request, ECX = 2 | MMU_UPDATE_PREEMPTED",
           "ebx %x (reqs %x) ecx %x", b, (uint32_t)reqs, c);
    events_enable();
}

static void multicall_preempted(void)
{
    events_enable();
    struct evtchn_port_op send = { ipi };
    mc[0] = (struct multicall_entry){ HC_event_channel_op, -1, { EVTCHNOP_send, (uint32_t)&send } };
    mc[1] = (struct multicall_entry){ HC_xen_version, -1, { XENVER_pagesize, 0 } };
    mc[2] = (struct multicall_entry){ HC_xen_version, -1, { XENVER_pagesize, 0 } };
    upcalls = 0; done_ptr = 0; mc1_result_seen = 0;
    uint32_t b = (uint32_t)mc, c = 3;
    long r = (long)(hypercall_page + HC_multicall * 32);
    asm volatile("call *%%eax" : "+a"(r), "+b"(b), "+c"(c) : : "edx", "esi", "edi", "memory", "cc");
    CHECK_EQ(r, 0, "multicall preempted and continued returns 0");
    CHECKF(mc[0].result == 0 && mc[1].result == 4096 && mc[2].result == 4096, "every entry ran once", "%d %d %d", mc[0].result, mc[1].result, mc[2].result);
    CHECKF(upcalls == 1 && mc1_result_seen == -1, "the upcall came between entry 0 (the send) and entry 1", "upcalls %d entry 1 %d", upcalls, mc1_result_seen);
    CHECKF(b == (uint32_t)&mc[1] && c == 2, "the multicall continued with EBX = &entry[1], ECX = 2", "ebx %x ecx %x", b, c);
}

static void multicall_subcall_preempted(void)
{
    done = 0; done_ptr = &done; upcalls = 0;
    pend_masked();
    reqs[0] = unmask_req(); reqs[1] = noop_req(); reqs[2] = noop_req();
    mc[0] = (struct multicall_entry){ HC_mmu_update, -1, { (uint32_t)reqs, 3, (uint32_t)&done, DOMID_SELF } };
    CHECK_EQ(HYPERVISOR_multicall(mc, 1), 0, "multicall with a preempted mmu_update returns 0");
    CHECKF(mc0_result_seen == HC_mmu_update && mc0_arg1_seen == (2 | PREEMPTED),
           "during the upcall the entry held the sub-call's continuation (result = op, count = 2 | PREEMPTED)",
           "result %d arg1 %x", mc0_result_seen, mc0_arg1_seen);
    CHECKF(mc[0].result == 0 && done == 3 && upcalls == 1, "the entry finished on re-issue: result 0, *done 3", "result %d done %d upcalls %d",
           mc[0].result, done, upcalls);
    events_enable();
}

static void multicall_iret(void)
{
    mc[0] = (struct multicall_entry){ HC_iret, -1, { 0 } };
    mc[1] = (struct multicall_entry){ HC_xen_version, -1, { XENVER_pagesize, 0 } };
    uint32_t eax;
    asm volatile("pushl $0x202\n\t"          /* EFLAGS: IF, so the upcall mask ends up 0 */
                 "pushl %%cs\n\t"
                 "pushl $1f\n\t"
                 "pushl $0x1234abcd\n\t"      /* EAX for the iret to restore */
                 "movl %1, %%ebx\n\t"
                 "movl $2, %%ecx\n\t"
                 "movl %2, %%eax\n\t"
                 "int $0x82\n"
                 "1:"
                 : "=a"(eax) : "r"((uint32_t)mc), "i"(HC_multicall) : "ebx", "ecx", "edx", "esi", "edi", "memory", "cc");
    if (xen4) {
        CHECK_EQ(eax, 0x1234abcd, "4.19: a multicall ending in iret returns the restored EAX");
        CHECK_EQ(mc[1].result, -1, "4.19: the entry after iret did not run");
    } else {
        CHECK_EQ(eax, 0, "3.1: the multicall returns 0 into the iret's context");
        CHECK_EQ(mc[1].result, 4096, "3.1: the entry after iret ran");
    }
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    xen4 = HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000;
    ipi = bind_ipi(0);
    evtchn_set_handler(ipi, on_ipi);
    events_enable();
    mmu_update_preempted();
    multicall_preempted();
    multicall_subcall_preempted();
    multicall_iret();
    all_pass();
}
