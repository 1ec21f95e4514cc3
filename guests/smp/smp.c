/* smp: several vCPUs (docs/xen-model.md "Several vCPUs"). vCPU 0 checks the
 * VCPUOP errors Xen gives, brings up every other vCPU with VCPUOP_initialise
 * and up, and plays ping-pong with each through IPI event channels: vCPU 0
 * takes its IPIs as upcalls, the secondaries keep events masked and wait in
 * SCHEDOP_poll. Each secondary then sleeps on its own one-shot timer
 * (VIRQ_TIMER bound to that vCPU) and takes itself down. vCPU 1 ends on page
 * tables of its own (a clone with a private page at USER_BASE that vCPU 0 does
 * not map). Run with --vcpus N (1 shows only the errors of a one-vCPU domain). */
#include "guest.h"
#include "secondary.h"

const char guest_name[] = "smp";

#define VCPUOP_initialise 0
#define VCPUOP_up 1
#define VCPUOP_down 2
#define VCPUOP_is_up 3
#define VCPUOP_get_runstate_info 4
#define VCPUOP_set_periodic_timer 6
#define VCPUOP_stop_periodic_timer 7
#define VCPUOP_set_singleshot_timer 8
#define VCPUOP_register_vcpu_info 10
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_vcpu 8
#define ENXIO 6
#define EBUSY 16
#define MAX_CPUS 8
#define ROUNDS 4

struct singleshot { uint64_t timeout_abs_ns; uint32_t flags; } __attribute__((packed));
struct register_vcpu_info { uint64_t mfn; uint32_t offset, rsvd; } __attribute__((packed));
struct bind_interdomain { uint16_t remote_dom, pad; uint32_t remote_port, local_port; };
struct bind_vcpu { uint32_t port, vcpu; };

static uint8_t stacks[MAX_CPUS][8192] __attribute__((aligned(16)));
static struct vcpu_guest_context ctx;

/* Shared between the vCPUs (they run one at a time, so plain volatile words do). */
static volatile uint32_t to_cpu[MAX_CPUS], ipi_port[MAX_CPUS], timer_port[MAX_CPUS];
static volatile uint32_t token[MAX_CPUS], reply[MAX_CPUS], pongs[MAX_CPUS];
static volatile uint64_t deadline[MAX_CPUS], woke_at[MAX_CPUS];
static volatile long timer_rc[MAX_CPUS], other_timer_rc[MAX_CPUS], runstate_rc[MAX_CPUS];
static volatile int runstate_state[MAX_CPUS], done[MAX_CPUS], wake_order[MAX_CPUS], woken;
static volatile int ipis_to_0;
static uint32_t to_0;
/* A loopback interdomain pair: vCPU 0 sends on loop_a; loop_b is moved to vCPU 1 with EVTCHNOP_bind_vcpu. */
static volatile uint32_t loop_a, loop_b;
static volatile int loop_seen;
/* vCPU 1's own address space: the domain's, plus a private page at USER_BASE holding PRIVATE_MAGIC. */
#define PRIVATE_MAGIC 0x1A2B3C4Du
static struct aspace own_space;
static volatile long switch_rc = -1;
static volatile uint32_t seen_private;
/* Where vCPU 1 reads its private page (a function of its own, for a debugger's breakpoint). */
static __attribute__((noinline)) void read_private(void)
{
    seen_private = *(volatile uint32_t *)USER_BASE;
    barrier();
}
/* Where each vCPU's vcpu_info is: its shared_info slot, or (4.19) vCPU 1's moved into this page. */
static volatile struct vcpu_info *vinfo[MAX_CPUS];
static uint8_t vinfo_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static long vcpu_op(int cmd, int id, void *arg) { return HC3(HC_vcpu_op, cmd, id, arg); }

/* vcpu_info[cpu].time (each vCPU reads its own slot). */
static uint64_t time_of(int cpu)
{
    volatile struct vcpu_time_info *t = &vinfo[cpu]->time;
    uint32_t ver, lo, hi;
    uint64_t base, stamp, delta;
    uint32_t mul; int shift;
    do {
        ver = t->version; barrier();
        base = t->system_time; stamp = t->tsc_timestamp; mul = t->tsc_to_system_mul; shift = t->tsc_shift;
        asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
        delta = (((uint64_t)hi << 32) | lo) - stamp;
        barrier();
    } while ((ver & 1) || ver != t->version);
    if (shift < 0) delta >>= -shift; else delta <<= shift;
    return base + (((delta & 0xFFFFFFFFu) * mul) >> 32) + (delta >> 32) * mul;
}

/* Wait in SCHEDOP_poll until the masked port is pending, then consume it. */
static void wait_port(uint32_t port)
{
    volatile uint32_t *pending = HYPERVISOR_shared_info->evtchn_pending;
    uint32_t ports[1] = { port };
    struct sched_poll p = { ports, 1, 0 };
    while (!test_bit(port, pending)) HYPERVISOR_sched_op(SCHEDOP_poll, &p);
    __atomic_fetch_and(&pending[port / 32], ~(1u << (port % 32)), __ATOMIC_SEQ_CST);
}

void secondary_main(int cpu);
void secondary_main(int cpu)
{
    for (int r = 0; r < ROUNDS; r++) {
        wait_port(ipi_port[cpu]);
        reply[cpu] = token[cpu] * 3 + (uint32_t)cpu;
        pongs[cpu]++;
        evtchn_send(to_0);
    }
    if (cpu == 1) {
        wait_port(loop_b);
        loop_seen = 1;
        /* vCPU 0 built own_space before it sent loop_a. */
        switch_rc = aspace_switch(&own_space);
        read_private();
    }
    struct vcpu_runstate_info rs;
    runstate_rc[cpu] = vcpu_op(VCPUOP_get_runstate_info, cpu, &rs);
    runstate_state[cpu] = rs.state;
    /* Its own one-shot timer, (cpu) ms ahead; another vCPU's may not be set from here. */
    struct singleshot s = { time_of(cpu) + (uint64_t)cpu * 1000000u, 0 };
    deadline[cpu] = s.timeout_abs_ns;
    other_timer_rc[cpu] = vcpu_op(VCPUOP_set_singleshot_timer, 0, &s);
    timer_rc[cpu] = vcpu_op(VCPUOP_set_singleshot_timer, cpu, &s);
    wait_port(timer_port[cpu]);
    woke_at[cpu] = time_of(cpu);
    wake_order[cpu] = ++woken;
    done[cpu] = 1;
    evtchn_send(to_0);
    vcpu_op(VCPUOP_down, cpu, 0);
    for (;;) HYPERVISOR_sched_op(SCHEDOP_yield, 0);   /* never reached: down is synchronous for itself */
}

static void ipi_to_0(unsigned port, struct regs *r) { ipis_to_0++; }
static struct regs *upcall(struct regs *r) { evtchn_scan(r); return r; }

static void fill_context(int cpu, uint32_t root_mfn)
{
    fill_secondary_context(&ctx, cpu, (uint32_t)(stacks[cpu] + sizeof stacks[cpu]), root_mfn);
}

static int count_vcpus(void)
{
    int n = 0;
    while (n < 32 && vcpu_op(VCPUOP_is_up, n, 0) >= 0) n++;
    return n;
}

static void hostile_ops(int n, uint32_t root_mfn)
{
    CHECK_EQ(vcpu_op(VCPUOP_is_up, 0, 0), 1, "vCPU 0 is up");
    CHECK_EQ(vcpu_op(VCPUOP_is_up, n, 0), -ENOENT, "is_up past the vCPU count gives -ENOENT");
    CHECK_EQ(vcpu_op(VCPUOP_up, n, 0), -ENOENT, "up past the vCPU count gives -ENOENT");
    fill_context(0, root_mfn);
    CHECK_EQ(vcpu_op(VCPUOP_initialise, n, &ctx), -ENOENT, "initialise past the vCPU count gives -ENOENT");
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 0, &ctx), -EEXIST, "initialise the running vCPU gives -EEXIST");
    if (n < 2) return;
    CHECK_EQ(vcpu_op(VCPUOP_is_up, 1, 0), 0, "vCPU 1 starts down");
    CHECK_EQ(vcpu_op(VCPUOP_up, 1, 0), -EINVAL, "up before initialise gives -EINVAL");
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 1, (void *)0x1000), -EFAULT, "initialise from an unmapped context gives -EFAULT");
    fill_context(1, virt_to_mfn(&ctx));
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 1, &ctx), -EINVAL, "initialise with a data page as CR3 gives -EINVAL");
    fill_context(1, root_mfn);
    ctx.gdt_ents = FIRST_RESERVED_GDT_ENTRY + 1;
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 1, &ctx), -EINVAL, "initialise with too many GDT entries gives -EINVAL");
    fill_context(1, root_mfn);
    ctx.ldt_base = 0x1234; ctx.ldt_ents = 1;
    CHECK_EQ(vcpu_op(VCPUOP_initialise, 1, &ctx), -EINVAL, "initialise with an unaligned LDT gives -EINVAL");
    CHECK_EQ(vcpu_op(VCPUOP_is_up, 1, 0), 0, "failed initialises leave vCPU 1 down");
    struct vcpu_runstate_info rs;
    CHECK_EQ(vcpu_op(VCPUOP_get_runstate_info, 1, &rs), 0, "runstate of a down vCPU");
    CHECK_EQ(rs.state, 3, "a down vCPU is offline (RUNSTATE_offline)");
}

static long register_vcpu_info(int cpu, uint32_t mfn, uint32_t offset)
{
    struct register_vcpu_info r = { mfn, offset, 0 };
    return vcpu_op(VCPUOP_register_vcpu_info, cpu, &r);
}

/* VCPUOP_register_vcpu_info: 3.1 has none; 4.19 moves vCPU 1's vcpu_info into vinfo_page + 64. */
static void move_vcpu_info(int n, uint32_t root_mfn)
{
    uint32_t mfn = virt_to_mfn(vinfo_page);
#ifndef CONFIG_PAE
    CHECK_EQ(register_vcpu_info(0, mfn, 64), -ENOSYS, "register_vcpu_info on Xen 3.1 gives -ENOSYS");
    (void)n; (void)root_mfn;
#else
    if (n < 2) return;
    CHECK_EQ(register_vcpu_info(1, mfn, 4096), -EINVAL, "register_vcpu_info with an offset past the page gives -EINVAL");
    CHECK_EQ(register_vcpu_info(1, mfn, 4090), -ENXIO, "register_vcpu_info crossing a page gives -ENXIO");
    CHECK_EQ(register_vcpu_info(1, mfn, 66), -ENXIO, "register_vcpu_info misaligned gives -ENXIO");
    CHECK_EQ(register_vcpu_info(1, root_mfn, 0), -EACCES, "register_vcpu_info on a page table gives -EACCES");
    CHECK_EQ(register_vcpu_info(1, 0x0FFFFFFF, 0), -EINVAL, "register_vcpu_info on a frame not ours gives -EINVAL");
    uint32_t old_version = HYPERVISOR_shared_info->vcpu_info[1].time.version;
    CHECK_EQ(register_vcpu_info(1, mfn, 64), 0, "register_vcpu_info for vCPU 1");
    CHECK_EQ(register_vcpu_info(1, mfn, 128), -EBUSY, "register_vcpu_info twice gives -EBUSY");
    volatile struct vcpu_info *moved = (volatile struct vcpu_info *)(vinfo_page + 64);
    CHECK_EQ(moved->evtchn_upcall_mask, 1, "the moved vcpu_info keeps its upcall mask");
    CHECK_EQ(moved->evtchn_upcall_pending, 1, "the moved vcpu_info has an event pending");
    CHECK_EQ(moved->evtchn_pending_sel, 0xFFFFFFFFu, "the moved vcpu_info has every selector bit set");
    CHECKF(moved->time.version > old_version && !(moved->time.version & 1), "the moved vcpu_info has its time written",
           "old %u new %u", old_version, moved->time.version);
    vinfo[1] = moved;
#endif
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_UPCALL, upcall);
    uint32_t root_mfn = virt_to_mfn(cur_root);
    int n = count_vcpus();
    printf("smp: %d vCPUs\n", n);
    hostile_ops(n, root_mfn);
    if (n > MAX_CPUS) n = MAX_CPUS;
    for (int c = 0; c < MAX_CPUS; c++) vinfo[c] = &HYPERVISOR_shared_info->vcpu_info[c];
    move_vcpu_info(n, root_mfn);
    uint32_t slot1_version = HYPERVISOR_shared_info->vcpu_info[1].time.version;

    int p = bind_ipi(0);
    CHECKF(p > 0, "bind_ipi for vCPU 0", "rc %d", p);
    to_0 = (uint32_t)p;
    evtchn_set_handler(to_0, ipi_to_0);
    CHECK_EQ(bind_ipi(n), -ENOENT, "bind_ipi to a vCPU past the count gives -ENOENT");
    for (int c = 1; c < n; c++) {
        ipi_port[c] = (uint32_t)bind_ipi(c);
        timer_port[c] = (uint32_t)bind_virq(VIRQ_TIMER, c);
        mask_evtchn(ipi_port[c]);
        mask_evtchn(timer_port[c]);
        CHECK_EQ(vcpu_op(VCPUOP_stop_periodic_timer, c, 0), 0, "stop another vCPU's periodic timer");
        fill_context(c, root_mfn);
        CHECK_EQ(vcpu_op(VCPUOP_initialise, c, &ctx), 0, "VCPUOP_initialise");
        CHECK_EQ(vcpu_op(VCPUOP_initialise, c, &ctx), -EEXIST, "initialise twice gives -EEXIST");
        CHECK_EQ(vcpu_op(VCPUOP_up, c, 0), 0, "VCPUOP_up");
        CHECK_EQ(vcpu_op(VCPUOP_is_up, c, 0), 1, "is_up after up");
    }

    /* An interdomain loopback pair whose local end notifies vCPU 1 (EVTCHNOP_bind_vcpu). */
    if (n >= 2) {
        struct evtchn_alloc_unbound au = { DOMID_SELF, DOMID_SELF, 0 };
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &au), 0, "alloc_unbound for the loopback");
        struct bind_interdomain bi = { DOMID_SELF, 0, au.port, 0 };
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &bi), 0, "bind_interdomain to it");
        loop_a = au.port;
        loop_b = bi.local_port;
        mask_evtchn(loop_b);
        __atomic_fetch_and(&HYPERVISOR_shared_info->evtchn_pending[loop_b / 32], ~(1u << (loop_b % 32)), __ATOMIC_SEQ_CST);
        struct bind_vcpu bv = { loop_b, (uint32_t)n };
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_bind_vcpu, &bv), -ENOENT, "bind_vcpu to a vCPU past the count gives -ENOENT");
        bv.port = ipi_port[1];
        bv.vcpu = 0;
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_bind_vcpu, &bv), -EINVAL, "bind_vcpu of an IPI port gives -EINVAL");
        bv.port = loop_b;
        bv.vcpu = 1;
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_bind_vcpu, &bv), 0, "bind_vcpu of an interdomain port to vCPU 1");
        struct evtchn_status st = { DOMID_SELF, 0, loop_b, 0, 0, { 0 } };
        CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_status, &st), 0, "status of the moved port");
        CHECK_EQ(st.vcpu, 1, "the moved port notifies vCPU 1");
    }

    /* Ping-pong: vCPU 0 sends a token, the secondary answers token*3+cpu and an IPI back. */
    uint32_t sum = 0;
    events_enable();
    for (int r = 0; r < ROUNDS; r++) {
        for (int c = 1; c < n; c++) {
            int before = ipis_to_0;
            token[c] = (uint32_t)(r * 100 + c);
            evtchn_send(ipi_port[c]);
            while (pongs[c] != (uint32_t)r + 1 || ipis_to_0 == before) block();
            CHECK_EQ(reply[c], token[c] * 3 + (uint32_t)c, "IPI round trip");
            sum += reply[c];
        }
    }
    if (n >= 2) {
        /* Late, so that everything before (the tests' instruction counts) stays as it was. */
        uint32_t *private_page = alloc_page();
        private_page[0] = PRIVATE_MAGIC;
        aspace_clone(&own_space);
        aspace_map(&own_space, USER_BASE, virt_to_mfn(private_page), _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY);
        CHECK_EQ(aspace_seal(&own_space), 0, "vCPU 1's own page tables built and pinned");
        evtchn_send(loop_a);   /* vCPU 1 waits for it on loop_b after its rounds */
    }
    for (int c = 1; c < n; c++)
        while (!done[c]) block();
    if (n >= 2) CHECK_EQ(loop_seen, 1, "vCPU 1 woke on its interdomain port");
    if (n >= 2) CHECK_EQ(switch_rc, 0, "vCPU 1 switches to its own page tables (NEW_BASEPTR)");
    if (n >= 2) CHECK_EQ(seen_private, PRIVATE_MAGIC, "vCPU 1 runs on its own page tables (a page vCPU 0 does not map)");
    events_disable();
    for (int c = 1; c < n; c++) {
        CHECK_EQ(runstate_rc[c], 0, "get_runstate_info of itself");
        CHECK_EQ(runstate_state[c], 0, "a vCPU sees itself running");
        CHECK_EQ(other_timer_rc[c], -EINVAL, "set_singleshot_timer for another vCPU gives -EINVAL");
        CHECK_EQ(timer_rc[c], 0, "set_singleshot_timer for itself");
        CHECKF(woke_at[c] >= deadline[c], "woken by its own VIRQ_TIMER after the deadline",
               "deadline %llu woke %llu", deadline[c], woke_at[c]);
        while (vcpu_op(VCPUOP_is_up, c, 0) != 0) HYPERVISOR_sched_op(SCHEDOP_yield, 0);
        CHECK_EQ(vcpu_op(VCPUOP_is_up, c, 0), 0, "down by itself");
    }
#ifdef CONFIG_PAE
    if (n >= 2) {
        CHECK_EQ(HYPERVISOR_shared_info->vcpu_info[1].time.version, slot1_version, "Xen no longer writes vCPU 1's old slot");
        CHECKF(vinfo[1]->time.system_time >= deadline[1], "vCPU 1's time is written in its moved vcpu_info",
               "time %llu", vinfo[1]->time.system_time);
    }
#else
    (void)slot1_version;
#endif
    printf("smp: %d IPI round trips, reply sum %u, timers woke in order", ROUNDS * (n - 1), sum);
    for (int c = 1; c < n; c++) printf(" %d", wake_order[c]);
    printf("\n");
}
