/* interfaces: the newer and the absent interfaces answer exactly as Xen does. The PAE
 * build runs on the 4.19 profile, the non-PAE build on 3.1 (the default profiles), so
 * each check names both answers: FIFO event-channel ops, alloc_unbound up to the port
 * limit, sysctl/domctl/platform_op/kexec and the 4.x-only interfaces, every vm_assist
 * type, and the virtual IOPL (PHYSDEVOP_set_iopl, VMASST architectural_iopl) for cli
 * and in at ring 1 and ring 3. */
#include "guest.h"

const char guest_name[] = "interfaces";

static int xen4;
#define BY(v419, v31) (xen4 ? (v419) : (v31))

#define EVTCHNOP_init_control  11
#define EVTCHNOP_expand_array  12
#define EVTCHNOP_set_priority  13
#define PHYSDEVOP_set_iopl     6
#define NR_EVTCHN              1024

static long hc(unsigned nr, long a, long b) { return hypercall(nr, a, b, 0, 0, 0); }

struct init_control { uint64_t control_gfn; uint32_t offset, vcpu; uint8_t link_bits, pad[7]; };
static uint8_t control_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static void fifo(void)
{
    struct init_control ic = { virt_to_mfn(control_page), 0, 0, 0, { 0 } };
    ic.vcpu = 1;
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), BY(-ENOENT, -ENOSYS), "init_control vcpu 1: -ENOENT (3.1: -ENOSYS)");
    ic.vcpu = 0; ic.offset = 4;
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), BY(-EINVAL, -ENOSYS), "init_control misaligned offset: -EINVAL");
    ic.offset = 4096 - 32;
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), BY(-EINVAL, -ENOSYS), "init_control block past the page: -EINVAL");
    ic.offset = 0; ic.control_gfn = 0xFFFFFFF;
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), BY(-EINVAL, -ENOSYS), "init_control frame not the domain's: -EINVAL");
    ic.control_gfn = virt_to_mfn(cur_root);
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), BY(-EINVAL, -ENOSYS), "init_control frame is a page table: -EINVAL");
    ic.control_gfn = virt_to_mfn(control_page);
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_init_control, &ic), -ENOSYS, "init_control on a good frame: -ENOSYS (the 2-level ABI stays)");
    uint64_t gfn = virt_to_mfn(control_page);
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_expand_array, &gfn), BY(-EOPNOTSUPP, -ENOSYS), "expand_array before init_control: -EOPNOTSUPP");
    int ipi = bind_ipi(0);
    uint32_t prio[2] = { ipi, 7 };
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_set_priority, prio), -ENOSYS, "set_priority on the 2-level ABI: -ENOSYS");
    prio[0] = 5000;
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_set_priority, prio), BY(-EINVAL, -ENOSYS), "set_priority on a bad port: -EINVAL");
    evtchn_close(ipi);
}

static uint32_t ports[NR_EVTCHN];

static void port_limit(void)
{
    int n = 0;
    long rc;
    for (;;) {
        struct evtchn_alloc_unbound a = { DOMID_SELF, 0, 0 };
        rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &a);
        if (rc) break;
        ports[n++] = a.port;
    }
    CHECK_EQ(rc, -ENOSPC, "alloc_unbound until the limit, then -ENOSPC");
    int busy = 0;
    for (unsigned p = 1; p < NR_EVTCHN; p++) {
        struct evtchn_status st = { DOMID_SELF, 0, p, 0, 0, { 0 } };
        if (HYPERVISOR_event_channel_op(EVTCHNOP_status, &st) == 0 && st.status != EVTCHNSTAT_closed) busy++;
    }
    CHECKF(busy == NR_EVTCHN - 1 && ports[n - 1] == NR_EVTCHN - 1, "every port but 0 in use at the limit (1024 ports)",
           "allocated %d, busy %d, last %u", n, busy, ports[n - 1]);
    for (int i = 0; i < n; i++) evtchn_close(ports[i]);
    struct evtchn_alloc_unbound a = { DOMID_SELF, 0, 0 };
    CHECK_EQ(HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &a), 0, "alloc_unbound works again after closing");
    evtchn_close(a.port);
}

static uint32_t op_buf[64];

static void toolstack(void)
{
    memset(op_buf, 0, sizeof op_buf);
    op_buf[1] = 0x15;                                /* XEN_SYSCTL_INTERFACE_VERSION of 4.19 */
    CHECK_EQ(hc(35, (long)op_buf, 0), -EPERM, "sysctl from a domU: -EPERM");
    op_buf[1] = 0x14;
    CHECK_EQ(hc(35, (long)op_buf, 0), BY(-EACCES, -EPERM), "sysctl with another interface version: -EACCES (3.1: -EPERM)");
    CHECK_EQ(hc(35, 0x1000, 0), BY(-EFAULT, -EPERM), "sysctl unreadable: -EFAULT (3.1: -EPERM before reading)");
    op_buf[0] = 5; op_buf[1] = 0x17; op_buf[2] = DOMID_SELF;    /* domctl: cmd, version, domain */
    CHECK_EQ(hc(36, (long)op_buf, 0), BY(-ESRCH, -EPERM), "domctl on DOMID_SELF (no such id): -ESRCH");
    op_buf[2] = 1;
    CHECK_EQ(hc(36, (long)op_buf, 0), -EPERM, "domctl on itself: -EPERM");
    op_buf[0] = 0; op_buf[1] = 0x03000001;
    CHECK_EQ(hc(7, (long)op_buf, 0), -EPERM, "platform_op: -EPERM");
    CHECK_EQ(hc(37, 0, (long)op_buf), -EPERM, "kexec_op: -EPERM");
    CHECK_EQ(hc(38, 0, 0), -ENOSYS, "tmem_op (removed): -ENOSYS");
    CHECK_EQ(hc(39, 0, 0), -ENOSYS, "argo_op (not built): -ENOSYS");
    CHECK_EQ(hc(40, 0, (long)op_buf), BY(-EOPNOTSUPP, -ENOSYS), "xenpmu_op (vPMU off): -EOPNOTSUPP");
    CHECK_EQ(hc(42, 0, 0), BY(-EPERM, -ENOSYS), "hypfs_op: -EPERM");
    CHECK_EQ(hc(48, (long)op_buf, 0), BY(-EPERM, -ENOSYS), "mca: -EPERM");
    CHECK_EQ(hc(25, 0, 0), -ENOSYS, "set_segment_base (x86_64 guests only): -ENOSYS");
}

static void vm_assist(void)
{
    for (int t = 0; t <= 5; t++) {
        char name[64];
        snprintf(name, sizeof name, "vm_assist enable/disable type %d", t);
        long want = (t <= 3 || xen4) ? 0 : -EINVAL;
        CHECKF(HYPERVISOR_vm_assist(VMASST_CMD_enable, t) == want && HYPERVISOR_vm_assist(1, t) == want, name, "want %ld", want);
    }
    CHECK_EQ(HYPERVISOR_vm_assist(VMASST_CMD_enable, 6), -EINVAL, "vm_assist type 6: -EINVAL");
    CHECK_EQ(HYPERVISOR_vm_assist(VMASST_CMD_enable, 32), -EINVAL, "vm_assist m2p_strict (64-bit only): -EINVAL");
    CHECK_EQ(HYPERVISOR_vm_assist(2, 0), -ENOSYS, "vm_assist unknown command: -ENOSYS");
    CHECK_EQ(HYPERVISOR_vm_assist(2, 9), -EINVAL, "vm_assist unknown command and type: -EINVAL (type first)");
}

static long set_iopl(uint32_t iopl) { return hc(HC_physdev_op, PHYSDEVOP_set_iopl, (long)&iopl); }

extern char io_user[], u_cli[], u_in[];
static uint8_t ustack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static int user_gps;
static uint32_t user_al;

static struct regs *on_user_gp(struct regs *r)
{
    if (r->eip == (uint32_t)u_cli) { user_gps++; r->eip += 1; return r; }
    if (r->eip == (uint32_t)u_in) { user_gps++; r->eip += 2; r->eax = 0x11; return r; }
    CHECKF(0, "unexpected #GP in ring 3", "eip %x", r->eip);
    return r;
}
static struct regs *on_int80(struct regs *r) { user_al = r->eax & 0xFF; leave_user(0); }

static int ring3_gps(void)
{
    user_gps = 0;
    enter_user((uint32_t)io_user, (uint32_t)ustack + PAGE_SIZE);
    return user_gps;
}

static uint32_t bp_eflags;
static struct regs *on_bp(struct regs *r) { bp_eflags = r->eflags; r->eflags |= 0x3000; return r; }

static void iopl(void)
{
    CHECK_EQ(set_iopl(4), -EINVAL, "set_iopl 4: -EINVAL");
    CHECK_EQ(set_iopl(0), 0, "set_iopl 0");
    PROBE(13, "cli");
    expect_trap("ring 1 cli at IOPL 0: #GP(0)", 13, 0, probe_start);
    PROBE(13, "inb $0x80, %%al", : : : "eax");
    expect_trap("ring 1 in at IOPL 0: #GP(0)", 13, 0, probe_start);
    CHECK_EQ(set_iopl(1), 0, "set_iopl 1");
    uint32_t al = 0;
    PROBE(-1, "cli\n\tinb $0x80, %%al", : "=a"(al) : "a"(0));
    CHECKF(last_trap.count == 0 && (al & 0xFF) == 0xFF, "ring 1 cli and in at IOPL 1 (in reads all ones)", "traps %d al %x", last_trap.count, al);

    set_handler(13, on_user_gp);
    set_trap(0x80, 3 | 4, on_int80);
    map_user_text();
    CHECK_EQ(HYPERVISOR_update_va_mapping((uint32_t)ustack, make_pte(virt_to_mfn(ustack),
             _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG), 0, "map a user stack");
    CHECK_EQ(ring3_gps(), 2, "ring 3 cli and in at IOPL 1: #GP each");
    CHECK_EQ(set_iopl(3), 0, "set_iopl 3");
    CHECKF(ring3_gps() == 0 && user_al == 0xFF, "ring 3 cli and in at IOPL 3", "gps %d al %x", user_gps, user_al);
    set_handler(13, trap_expected);
    CHECK_EQ(set_iopl(0), 0, "set_iopl 0 again");

    if (!xen4) {
        CHECK_EQ(HYPERVISOR_vm_assist(VMASST_CMD_enable, 4), -EINVAL, "3.1 has no architectural_iopl");
        return;
    }
    CHECK_EQ(HYPERVISOR_vm_assist(VMASST_CMD_enable, 4), 0, "vm_assist architectural_iopl");
    PROBE(-1, "cli\n\tinb $0x80, %%al", : "=a"(al) : "a"(0));
    CHECKF(last_trap.count == 0, "architectural_iopl: the kernel counts as ring 0 (cli, in at IOPL 0)", "traps %d", last_trap.count);
    set_iopl(2);
    set_handler(3, on_bp);
    asm volatile("int3");
    CHECKF((bp_eflags & 0x3000) == 0x2000, "architectural_iopl: bounce frames carry the virtual IOPL", "eflags %x", bp_eflags);
    set_handler(13, on_user_gp);
    CHECK_EQ(ring3_gps(), 0, "architectural_iopl: HYPERVISOR_iret took IOPL 3 from the frame (ring 3 cli, in)");
    set_iopl(2);
    CHECK_EQ(ring3_gps(), 2, "ring 3 at IOPL 2: #GP each");
    set_handler(13, trap_expected);
    HYPERVISOR_vm_assist(1, 4);
    set_iopl(0);
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    xen4 = HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000;
#ifdef CONFIG_PAE
    CHECK(xen4, "the PAE build runs on the 4.19 profile");
#else
    CHECK(!xen4, "the non-PAE build runs on the 3.1 profile");
#endif
    fifo();
    port_limit();
    toolstack();
    vm_assist();
    iopl();
    all_pass();
}
