/* vcpuop: the vCPU interfaces beyond bring-up (docs/xen-model.md "Several
 * vCPUs"), as Xen answers them. vCPU 0 checks GNTTABOP_set_version and
 * get_version, VCPUOP_send_nmi to itself (coalescing, masked until
 * HYPERVISOR_iret, lost without a handler) and, with more vCPUs, what
 * VCPUOP_initialise takes from the context (FPU image, debug registers,
 * virtual IOPL, CR4.DE, VGCF_online), which SCHEDOP_poll wakes (one port,
 * several ports, timeouts), send_nmi to a polling vCPU, and the runstate times
 * of a vCPU that is not running. Non-PAE builds run as Xen 3.1, PAE builds as
 * Xen 4.19 (docs/xen-model.md "ABI profile"); run with --vcpus 1, 2 or 3. */
#include "guest.h"
#include "secondary.h"

const char guest_name[] = "vcpuop";

#define HC_set_debugreg 8
#define HC_get_debugreg 9
#define HC_grant_table_op 20
#define HC_nmi_op 28
#define VCPUOP_initialise 0
#define VCPUOP_up 1
#define VCPUOP_down 2
#define VCPUOP_is_up 3
#define VCPUOP_get_runstate_info 4
#define VCPUOP_register_runstate_memory_area 5
#define VCPUOP_send_nmi 11
#define GNTTABOP_set_version 8
#define GNTTABOP_get_version 10
#define XENNMI_register_callback 0
#define XENNMI_unregister_callback 1
#define VGCF_I387_VALID (1u << 0)
#define VGCF_IN_KERNEL (1u << 2)
#define VGCF_ONLINE (1u << 5)
#define CR4_DE (1u << 3)
#define MAX_CPUS 3
#define RS_RUNNING 0
#define RS_RUNNABLE 1
#define RS_BLOCKED 2
#define RS_OFFLINE 3

struct gnttab_get_version { uint16_t dom, pad; uint32_t version; };

static uint8_t stacks[MAX_CPUS][8192] __attribute__((aligned(16)));
static struct vcpu_guest_context ctx;

static long vcpu_op(int cmd, int id, void *arg) { return HC3(HC_vcpu_op, cmd, id, arg); }
static long gnttab_op(int cmd, void *arg) { return HC3(HC_grant_table_op, cmd, arg, 1); }
static long get_debugreg(int r) { return HC1(HC_get_debugreg, r); }

/* Shared between the vCPUs (they run one at a time). */
static volatile uint32_t p1, q1, r1;                 /* masked IPI ports of vCPU 1 */
static volatile int step, started[MAX_CPUS], done[MAX_CPUS];
static volatile uint64_t poll_from, poll_woke, poll_deadline;
static volatile long poll_rc[8];
static volatile int nmis[MAX_CPUS], nmi_depth, nmi_max_depth, nmi_masked_in_handler = 1;
static volatile uint32_t ctx_dr[4], ctx_cr4, ctx_eflags;
static volatile uint16_t ctx_fcw[MAX_CPUS];
static volatile uint32_t ctx_mxcsr[MAX_CPUS];
static volatile uint8_t ctx_tag[MAX_CPUS];
static volatile struct vcpu_runstate_info self_rs, area1;
static volatile uint64_t self_rs_from, self_rs_to;
static uint8_t fxarea[MAX_CPUS][512] __attribute__((aligned(16)));
static volatile int failsafes;
static volatile uint32_t failsafe_es, failsafe_eip;

/* vCPU 2's first return to the guest: its ES does not load, so Xen bounces to the failsafe callback. */
static struct regs *failsafe(struct regs *r)
{
    failsafes++;
    failsafe_es = failsafe_segs[1];
    failsafe_eip = r->eip;
    return r;
}

/* vcpu_info[cpu].time (each vCPU reads its own slot). */
static uint64_t time_of(int cpu)
{
    volatile struct vcpu_time_info *t = &HYPERVISOR_shared_info->vcpu_info[cpu].time;
    uint32_t ver, lo, hi, mul;
    uint64_t base, stamp, delta;
    int shift;
    do {
        ver = t->version; barrier();
        base = t->system_time; stamp = t->tsc_timestamp; mul = t->tsc_to_system_mul; shift = t->tsc_shift;
        asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
        barrier();
    } while ((ver & 1) || ver != t->version);
    delta = (((uint64_t)hi << 32) | lo) - stamp;
    if (shift < 0) delta >>= -shift; else delta <<= shift;
    return base + (((delta & 0xFFFFFFFFu) * mul) >> 32) + (delta >> 32) * mul;
}

static long poll(uint32_t *ports, uint32_t n, uint64_t timeout)
{
    struct sched_poll p = { ports, n, timeout };
    return HYPERVISOR_sched_op(SCHEDOP_poll, &p);
}

static void clear_pending(uint32_t port)
{
    __atomic_fetch_and(&HYPERVISOR_shared_info->evtchn_pending[port / 32], ~(1u << (port % 32)), __ATOMIC_SEQ_CST);
}

static struct vcpu_runstate_info runstate(int cpu)
{
    struct vcpu_runstate_info rs;
    CHECK_EQ(vcpu_op(VCPUOP_get_runstate_info, cpu, &rs), 0, "get_runstate_info");
    return rs;
}

static uint64_t runstate_sum(const volatile struct vcpu_runstate_info *rs)
{
    return rs->time[0] + rs->time[1] + rs->time[2] + rs->time[3];
}

/* Yield until vCPU cpu's runstate is `state` (it runs meanwhile). */
static void wait_state(int cpu, int state)
{
    for (int i = 0; i < 1000 && runstate(cpu).state != state; i++) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
}

#ifdef CONFIG_PAE
/* The NMI handler (trap_ctxt[2]): returns through HYPERVISOR_iret, which unmasks NMIs. */
static struct regs *nmi(struct regs *r)
{
    int cpu = (uint32_t)r >= (uint32_t)stacks[1] && (uint32_t)r < (uint32_t)stacks[MAX_CPUS] ?
        (int)(((uint32_t)r - (uint32_t)stacks[0]) / sizeof stacks[0]) : 0;
    nmis[cpu]++;
    if (++nmi_depth > nmi_max_depth) nmi_max_depth = nmi_depth;
    if (cpu == 0) {
        nmi_masked_in_handler &= HYPERVISOR_shared_info->vcpu_info[0].evtchn_upcall_mask == 1;
        if (nmis[0] == 1) {
            /* Two more while this one runs: masked until the iret, then one NMI (nmi_pending is a flag). */
            vcpu_op(VCPUOP_send_nmi, 0, 0);
            vcpu_op(VCPUOP_send_nmi, 0, 0);
        }
    }
    nmi_depth--;
    return r;
}
#endif

/* ---- GNTTABOP_set_version / get_version ---- */
static void grant_versions(void)
{
    uint32_t v = 1;
    struct gnttab_get_version g = { DOMID_SELF, 0, 0 };
#ifdef CONFIG_PAE
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, &v), 0, "set_version 1 (the version in use)");
    CHECK_EQ(v, 1, "set_version writes the version back");
    v = 2;
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, &v), -ENOSYS, "set_version 2 with max_grant_version 1 gives -ENOSYS");
    CHECK_EQ(v, 1, "a refused set_version still writes the version in use");
    v = 3;
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, &v), -EINVAL, "set_version 3 gives -EINVAL");
    v = 0;
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, &v), -EINVAL, "set_version 0 gives -EINVAL");
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, (void *)0x1000), -EFAULT, "set_version from an unmapped address gives -EFAULT");
    CHECK_EQ(gnttab_op(GNTTABOP_get_version, &g), 0, "get_version of DOMID_SELF");
    CHECK_EQ(g.version, 1, "the grant table is version 1");
    g.dom = 0; g.version = 7;
    CHECK_EQ(gnttab_op(GNTTABOP_get_version, &g), -EPERM, "get_version of domain 0 from a domU gives -EPERM");
    CHECK_EQ(g.version, 7, "a refused get_version writes nothing");
    g.dom = 42;
    CHECK_EQ(gnttab_op(GNTTABOP_get_version, &g), -ESRCH, "get_version of a domain that does not exist gives -ESRCH");
    CHECK_EQ(gnttab_op(GNTTABOP_get_version, (void *)0x1000), -EFAULT, "get_version from an unmapped address gives -EFAULT");
#else
    CHECK_EQ(gnttab_op(GNTTABOP_set_version, &v), -ENOSYS, "set_version on Xen 3.1 gives -ENOSYS");
    CHECK_EQ(gnttab_op(GNTTABOP_get_version, &g), -ENOSYS, "get_version on Xen 3.1 gives -ENOSYS");
#endif
}

/* ---- VCPUOP_send_nmi to vCPU 0 itself ---- */
static void nmi_self(int n)
{
#ifdef CONFIG_PAE
    CHECK_EQ(vcpu_op(VCPUOP_send_nmi, 0, (void *)4), -EINVAL, "send_nmi with an argument gives -EINVAL");
    CHECK_EQ(vcpu_op(VCPUOP_send_nmi, n, 0), -ENOENT, "send_nmi past the vCPU count gives -ENOENT");
    set_handler(2, nmi);
    /* traps_init put a handler in trap_ctxt[2]; nmi_op unregister empties it. */
    CHECK_EQ(HC2(HC_nmi_op, XENNMI_unregister_callback, 0), 0, "nmi_op unregister");
    CHECK_EQ(vcpu_op(VCPUOP_send_nmi, 0, 0), 0, "send_nmi without a handler");
    CHECK_EQ(nmis[0], 0, "an NMI without a handler (trap_ctxt[2] empty) is lost");
    struct callback_register cb = { CALLBACKTYPE_nmi, 0, FLAT_KERNEL_CS, (uint32_t)trap_stub(2) };
    CHECK_EQ(HYPERVISOR_callback_op(CALLBACKOP_register, &cb), 0, "register the NMI callback");
    CHECK_EQ(nmis[0], 0, "registering the callback does not bring the lost NMI back");
    events_enable();
    long rc = vcpu_op(VCPUOP_send_nmi, 0, 0);
    int seen = nmis[0];
    uint8_t mask_after = HYPERVISOR_shared_info->vcpu_info[0].evtchn_upcall_mask;
    events_disable();
    CHECK_EQ(rc, 0, "send_nmi to itself");
    CHECK_EQ(seen, 2, "the NMI arrives on the hypercall's return, the two sent inside it as one after its iret");
    CHECK_EQ(nmi_max_depth, 1, "NMIs do not nest (masked until HYPERVISOR_iret)");
    CHECK_EQ(nmi_masked_in_handler, 1, "the NMI callback runs with events masked (TI_SET_IF)");
    CHECK_EQ(mask_after, 0, "HYPERVISOR_iret gives back the caller's event mask");
    struct callback_unregister { uint16_t type, pad; } un = { CALLBACKTYPE_nmi, 0 };
    CHECK_EQ(HYPERVISOR_callback_op(CALLBACKOP_unregister, &un), 0, "callback_op unregister of the NMI callback");
    vcpu_op(VCPUOP_send_nmi, 0, 0);
    CHECK_EQ(nmis[0], 2, "no NMI after it is unregistered");
    uint32_t handler[2] = { (uint32_t)trap_stub(2), 0 };
    CHECK_EQ(HC2(HC_nmi_op, XENNMI_register_callback, handler), 0, "nmi_op register");
    vcpu_op(VCPUOP_send_nmi, 0, 0);
    CHECK_EQ(nmis[0], 3, "an NMI through the nmi_op handler");
#else
    (void)n;
    CHECK_EQ(vcpu_op(VCPUOP_send_nmi, 0, 0), -ENOSYS, "send_nmi on Xen 3.1 gives -ENOSYS");
#endif
}

/* ---- the secondaries ---- */
static void save_fpu(int cpu)
{
    asm volatile("fxsave %0" : "=m"(fxarea[cpu]));
    ctx_fcw[cpu] = (uint16_t)(fxarea[cpu][0] | (fxarea[cpu][1] << 8));
    ctx_tag[cpu] = fxarea[cpu][4];
    ctx_mxcsr[cpu] = *(uint32_t *)&fxarea[cpu][24];
}

void secondary_main(int cpu);
void secondary_main(int cpu)
{
    started[cpu] = 1;
    save_fpu(cpu);
    if (cpu == 2) {
        done[2] = 1;
        vcpu_op(VCPUOP_down, 2, 0);
    }
    /* vCPU 1: a runstate area of its own, then what VCPUOP_initialise gave it. */
    uint32_t area = (uint32_t)&area1;
    vcpu_op(VCPUOP_register_runstate_memory_area, 1, &area);
    uint32_t fl;
    asm volatile("pushfl; popl %0" : "=r"(fl));
    ctx_eflags = fl;
    asm volatile("cli");    /* virtual IOPL 1 from the context: emulated, no #GP */
    for (int i = 0; i < 4; i++) ctx_dr[i] = (uint32_t)get_debugreg(i == 2 ? 6 : i == 3 ? 7 : i);
#ifdef CONFIG_PAE
    uint32_t cr4;
    asm volatile("movl %%cr4, %0" : "=r"(cr4));
    ctx_cr4 = cr4;
#endif
    uint32_t one[1] = { p1 }, two[2] = { p1, r1 };
    /* Step 1: one port; vCPU 0 makes another port pending, then this one. */
    poll_from = time_of(1);
    step = 1;
    poll_rc[0] = poll(one, 1, 0);
    clear_pending(p1);
    /* Step 2: two ports; woken by a third. */
    step = 2;
    poll_rc[1] = poll(two, 2, 0);
    /* Step 3: a timeout 200 us ahead and nothing sent. */
    poll_deadline = time_of(1) + 200000;
    step = 3;
    poll_rc[2] = poll(one, 1, poll_deadline);
    poll_woke = time_of(1);
    /* Step 4: a timeout already past. */
    poll_rc[3] = poll(one, 1, 1);
    self_rs_from = time_of(1);
    vcpu_op(VCPUOP_get_runstate_info, 1, (void *)&self_rs);
    self_rs_to = time_of(1);
    /* Step 5: woken by an NMI (4.19) or by a port (3.1). */
    step = 5;
    poll_rc[4] = poll(one, 1, 0);
    done[1] = 1;
    vcpu_op(VCPUOP_down, 1, 0);
    for (;;) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
}

static void fill_context(int cpu, uint32_t root_mfn)
{
    fill_secondary_context(&ctx, cpu, (uint32_t)(stacks[cpu] + sizeof stacks[cpu]), root_mfn);
    ctx.trap_ctxt[2] = (struct trap_info){ 2, 4, FLAT_KERNEL_CS, (uint32_t)trap_stub(2) };
}

/* An FXSAVE image: FCW, abridged tag, MXCSR. */
static void fpu_image(uint16_t fcw, uint8_t tag, uint32_t mxcsr)
{
    ctx.fpu_ctxt[0] = (uint8_t)fcw; ctx.fpu_ctxt[1] = (uint8_t)(fcw >> 8);
    ctx.fpu_ctxt[4] = tag;
    memcpy(&ctx.fpu_ctxt[24], &mxcsr, 4);
}

static void start_vcpu1(uint32_t root_mfn)
{
    fill_context(1, root_mfn);
    ctx.flags = VGCF_I387_VALID | VGCF_IN_KERNEL;
    fpu_image(0x027F, 0x01, 0x7F80);
    ctx.user_regs.eflags = 0x1202;           /* IOPL 1: made virtual */
    ctx.ctrlreg[4] = CR4_DE;
    ctx.debugreg[0] = 0x12345678;
    ctx.debugreg[1] = 0xFFFFF000;            /* inside Xen's area on 3.1 */
    ctx.debugreg[6] = 0;
    ctx.debugreg[7] = 0x00020001;            /* L0 with R/W0 = 10: an I/O breakpoint */
    struct vcpu_runstate_info rs = runstate(1);
    CHECK_EQ(rs.state, RS_OFFLINE, "vCPU 1 is offline before VCPUOP_up");
    CHECK_EQ(rs.state_entry_time, 0, "a vCPU is created at system time 0");
    CHECK(rs.time[0] == 0 && rs.time[1] == 0 && rs.time[2] == 0, "a vCPU never up has only offline time");
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 1, &ctx), 0, "VCPUOP_initialise vCPU 1");
    CHECK_EQ(vcpu_op(VCPUOP_up, 1, 0), 0, "VCPUOP_up vCPU 1");
}

static void check_vcpu1_context(void)
{
    CHECK_EQ(ctx_fcw[1], 0x027F, "FCW from the context's FXSAVE image (VGCF_i387_valid)");
    CHECK_EQ(ctx_tag[1], 0x01, "the tag word from the image");
    CHECK_EQ(ctx_mxcsr[1], 0x7F80, "MXCSR from the image");
    CHECK_EQ(ctx_eflags & 0x3000, 0, "EFLAGS.IOPL is virtual (0 in the real EFLAGS)");
    CHECK_EQ(ctx_eflags & 0x200, 0x200, "EFLAGS.IF is set");
    CHECK_EQ(ctx_dr[0], 0x12345678, "DR0 from the context");
    CHECK_EQ(ctx_dr[2], 0xFFFF0FF0, "DR6 from the context, with its fixed bits");
#ifdef CONFIG_PAE
    CHECK_EQ(ctx_dr[1], 0xFFFFF000, "DR1: any 32-bit address on 4.19");
    CHECK_EQ(ctx_dr[3], 0x00020401, "DR7: an I/O breakpoint allowed with CR4.DE from ctrlreg[4]");
    CHECK_EQ(ctx_cr4 & CR4_DE, CR4_DE, "CR4.DE from ctrlreg[4]");
#else
    CHECK_EQ(ctx_dr[1], 0, "DR1 inside Xen's area is refused on 3.1 and left at 0");
    CHECK_EQ(ctx_dr[3], 0, "DR7 with an I/O breakpoint is refused on 3.1 and left at 0");
#endif
}

/* SCHEDOP_poll wakeups and the runstate of vCPU 1 while it waits. */
static void polls(void)
{
    while (step != 1) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    wait_state(1, RS_BLOCKED);
    uint64_t t0 = time_of(0);
    struct vcpu_runstate_info rs = runstate(1);
    uint64_t t1 = time_of(0);
    CHECK_EQ(rs.state, RS_BLOCKED, "a polling vCPU is blocked");
    CHECKF(rs.state_entry_time >= poll_from && rs.state_entry_time <= t1, "blocked since its poll",
           "entry %llu poll %llu now %llu", rs.state_entry_time, poll_from, t1);
    CHECK(rs.time[0] > 0, "vCPU 1 has running time");
    CHECK(rs.time[3] > 0, "vCPU 1 has offline time from before VCPUOP_up");
    CHECKF(runstate_sum(&rs) >= t0 && runstate_sum(&rs) <= t1, "its times add up to the system time",
           "sum %llu between %llu and %llu", runstate_sum(&rs), t0, t1);
    CHECK_EQ(area1.state, RS_BLOCKED, "its runstate area was written when it was descheduled");
    CHECK_EQ(area1.state_entry_time, rs.state_entry_time, "with the entry time get_runstate_info gives");
    CHECK_EQ(runstate_sum(&area1), area1.state_entry_time, "the area's raw times add up to its entry time");
    evtchn_send(q1);
    rs = runstate(1);
#ifdef CONFIG_PAE
    CHECK_EQ(rs.state, RS_BLOCKED, "another port pending does not wake a poller of one port (4.19)");
    clear_pending(q1);
    evtchn_send(p1);
    CHECK_EQ(runstate(1).state, RS_RUNNABLE, "its own port wakes it");
#else
    CHECK_EQ(rs.state, RS_RUNNABLE, "any port pending wakes every poller (3.1)");
    clear_pending(q1);
#endif
    while (step != 2) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    wait_state(1, RS_BLOCKED);
    evtchn_send(q1);
    CHECK_EQ(runstate(1).state, RS_RUNNABLE, "a poller of several ports wakes on any port");
    clear_pending(q1);
    while (step != 5) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    wait_state(1, RS_BLOCKED);
#ifdef CONFIG_PAE
    CHECK_EQ(vcpu_op(VCPUOP_send_nmi, 1, 0), 0, "send_nmi to a polling vCPU");
    CHECK_EQ(runstate(1).state, RS_RUNNABLE, "send_nmi kicks a polling vCPU awake");
#else
    evtchn_send(p1);
#endif
    while (!done[1]) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    CHECK_EQ(poll_rc[0], 0, "poll of one port returns 0 when woken");
    CHECK_EQ(poll_rc[1], 0, "poll of two ports returns 0 when woken");
    CHECK_EQ(poll_rc[2], 0, "poll returns 0 at its timeout");
    CHECKF(poll_woke >= poll_deadline, "woken at the timeout", "deadline %llu woke %llu", poll_deadline, poll_woke);
    CHECK_EQ(poll_rc[3], 0, "poll with a timeout already past returns 0");
    CHECK_EQ(poll_rc[4], 0, "poll returns 0 when kicked");
    CHECK_EQ(self_rs.state, RS_RUNNING, "a vCPU sees itself running");
    CHECKF(runstate_sum(&self_rs) >= self_rs_from && runstate_sum(&self_rs) <= self_rs_to, "its own times add up to the system time",
           "sum %llu between %llu and %llu", runstate_sum(&self_rs), self_rs_from, self_rs_to);
#ifdef CONFIG_PAE
    CHECK_EQ(nmis[1], 1, "vCPU 1 took the NMI through the trap_ctxt[2] of its context");
#endif
    struct vcpu_runstate_info down = runstate(1);
    CHECK_EQ(down.state, RS_OFFLINE, "a vCPU down is offline");
}

/* vCPU 2: an FXSAVE image whose MXCSR faults the restore, and VGCF_online. */
static void vcpu2(uint32_t root_mfn)
{
    fill_context(2, root_mfn);
    ctx.flags = VGCF_I387_VALID | VGCF_ONLINE;
    fpu_image(0x027F, 0x00, 0x00011F80);   /* MXCSR bit 16 is reserved: the restore faults */
    ctx.user_regs.es = 0x0AB9;               /* GDT entry 343 is past gdt_ents: the selector load faults */
    ctx.failsafe_callback_eip = (uint32_t)failsafe_callback;
    set_handler(VEC_FAILSAFE, failsafe);
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 2, &ctx), 0, "VCPUOP_initialise vCPU 2");
#ifdef CONFIG_PAE
    CHECK_EQ(vcpu_op(VCPUOP_is_up, 2, 0), 1, "VGCF_online clears the down flag (4.19)");
    CHECK_EQ(vcpu_op(VCPUOP_up, 2, 0), 0, "VCPUOP_up of a vCPU not down");
    for (int i = 0; i < 20; i++) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    CHECK_EQ(started[2], 0, "nothing woke it: it does not run");
    CHECK_EQ(runstate(2).state, RS_OFFLINE, "and it stays offline");
    CHECK_EQ(vcpu_op(VCPUOP_down, 2, 0), 0, "VCPUOP_down");
#else
    CHECK_EQ(vcpu_op(VCPUOP_is_up, 2, 0), 0, "VGCF_online means nothing to 3.1");
#endif
    CHECK_EQ(vcpu_op(VCPUOP_up, 2, 0), 0, "VCPUOP_up wakes it");
    while (!done[2]) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
    CHECK_EQ(failsafes, 1, "a context selector that does not load: one failsafe callback on the first return");
    CHECK_EQ(failsafe_es, 0x0AB9, "its frame holds the context's ES");
    CHECK_EQ(failsafe_eip, (uint32_t)secondary_start, "and the context's EIP");
#ifdef CONFIG_PAE
    CHECK_EQ(ctx_fcw[2], 0x037F, "a faulting image: XRSTOR's fixup resets the x87 state (4.19)");
    CHECK_EQ(ctx_mxcsr[2], 0x1F80, "and keeps MXCSR ANDed with its mask");
#else
    CHECK_EQ(ctx_fcw[2], 0x0040, "a faulting image: FXRSTOR's fixup loads zeroes (3.1; FCW bit 6 reads 1)");
    CHECK_EQ(ctx_mxcsr[2], 0, "MXCSR zeroed too");
#endif
}

static int count_vcpus(void)
{
    int n = 0;
    while (n < 32 && vcpu_op(VCPUOP_is_up, n, 0) >= 0) n++;
    return n;
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    int n = count_vcpus();
    printf("vcpuop: %d vCPUs\n", n);
    grant_versions();
    nmi_self(n);
    uint32_t root_mfn = virt_to_mfn(cur_root);
    if (n >= 2) {
        p1 = (uint32_t)bind_ipi(1);
        q1 = (uint32_t)bind_ipi(1);
        r1 = (uint32_t)bind_ipi(1);
        mask_evtchn(p1); mask_evtchn(q1); mask_evtchn(r1);
        start_vcpu1(root_mfn);
        polls();
        check_vcpu1_context();
    }
    if (n >= 3) vcpu2(root_mfn);
    printf("vcpuop: NMIs taken %d %d, poll results %ld %ld %ld %ld %ld\n", nmis[0], nmis[1],
           poll_rc[0], poll_rc[1], poll_rc[2], poll_rc[3], poll_rc[4]);
}
