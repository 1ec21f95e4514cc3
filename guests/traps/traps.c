/* traps: every exception a ring-1 guest can provoke, delivered with the right
 * vector, error code, EIP and CR2 (§8.2, §8.3), both iret paths (§8.5), and a
 * ring-3 excursion with int 0x80 and software-interrupt DPL checks. */
#include "guest.h"

const char guest_name[] = "traps";

static const int32_t bounds[2] = { 10, 20 };
static uint8_t ustack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static void ring1_exceptions(void)
{
    PROBE(0, "divl %%ecx", : : "a"(1), "d"(0), "c"(0));
    expect_trap("#DE from div by zero", 0, 0, probe_start);

    PROBE(1, "pushfl\n\torl $0x100, (%%esp)\n\tpopfl\n\tnop", : :);
    expect_trap("#DB after single step (TF)", 1, 0, probe_end);

    PROBE(3, "int3");
    expect_trap("#BP from int3 (EIP after)", 3, 0, probe_end);

    PROBE(4, "movl $0x7fffffff, %%eax\n\taddl $1, %%eax\n\tinto", : : : "eax");
    expect_trap("#OF from into (EIP after)", 4, 0, probe_end);

    PROBE(5, "boundl %0, %1", : : "r"(5), "m"(bounds));
    expect_trap("#BR from bound", 5, 0, probe_start);

    PROBE(6, "ud2");
    expect_trap("#UD from ud2", 6, 0, probe_start);

    CHECK_EQ(HYPERVISOR_fpu_taskswitch(1), 0, "fpu_taskswitch(1)");
    PROBE(7, "fninit");
    expect_trap("#NM with virtual TS set", 7, 0, probe_start);
    PROBE(-1, "fninit");
    CHECK_EQ(last_trap.count, 0, "virtual TS cleared by the #NM bounce");

    PROBE(13, "movw %%ax, %%ds", : : "a"(0xF001));
    expect_trap("#GP(0xF000) for a selector beyond the GDT limit", 13, 0xF000, probe_start);
    PROBE(13, "movw %%ax, %%ds", : : "a"(0x0009));
    expect_trap("#GP(0x8) for a GDT page the guest did not supply", 13, 0x8, probe_start);
    PROBE(13, "int $0x0d");
    expect_trap("#GP(0x6a) for int $0x0d through a DPL-0 entry", 13, 0x0d * 8 + 2, probe_start);

    PROBE(14, "movl 0x1234, %%eax", : : : "eax");
    expect_trap("#PF reading an unmapped address", 14, 0, probe_start);
    CHECK_EQ(last_trap.cr2, 0x1234, "#PF cr2 in vcpu_info");

    volatile uint32_t *pt = (uint32_t *)(start_info->pt_base + 0x800);
    PROBE(14, "movl %0, %1", : : "r"(*pt), "m"(*pt));
    expect_trap("#PF(P|W) writing the read-only top-level table", 14, 3, probe_start);
    CHECK_EQ(last_trap.cr2, (uint32_t)pt, "#PF cr2 for the write fault");

    CHECK_EQ(gdt_install(), 0, "set_gdt with a read-only frame");
    uint64_t np = make_desc(0, 0xFFFFF, DESC_DATA_RW, 1, DESC_G_32) & ~(1ull << 47);
    CHECK_EQ(gdt_set(8, np), 0, "update_descriptor not-present data entry");
    PROBE(11, "movw %%ax, %%ds", : : "a"(8 * 8 + 1));
    expect_trap("#NP(0x40) loading DS with a not-present descriptor", 11, 0x40, probe_start);
    PROBE(12, "movw %%ax, %%ss", : : "a"(8 * 8 + 1));
    expect_trap("#SS(0x40) loading SS with a not-present descriptor", 12, 0x40, probe_start);
}

/* The frame, the saved mask in CS[23:16], and both ways back. */
static void ring1_returns(void)
{
    PROBE(6, "ud2");
    CHECK_EQ(last_trap.cs >> 16, 1, "saved upcall mask 1 in CS[23:16]");
    CHECK_EQ(last_trap.eflags & 0x200, 0, "frame EFLAGS.IF = !saved mask (0)");

    for (int mode = IRET_HYPERCALL; mode <= IRET_REAL; mode++) {
        uint32_t b = 0x12345678, s = 0x9abcdef0, a = 0x0badf00d;
        iret_mode = mode;
        PROBE(6, "ud2", : "+b"(b), "+S"(s), "+a"(a));
        iret_mode = IRET_HYPERCALL;
        CHECKF(last_trap.count == 1 && b == 0x12345678 && s == 0x9abcdef0 && a == 0x0badf00d,
               mode == IRET_REAL ? "ring 1 resumes after a real iret" : "ring 1 resumes after HYPERVISOR_iret",
               "count %d ebx 0x%x esi 0x%x eax 0x%x", last_trap.count, b, s, a);
    }

    events_enable();
    PROBE(6, "ud2");
    uint8_t mask_after = vcpu0->evtchn_upcall_mask;
    events_disable();
    CHECKF((last_trap.cs >> 16) == 0 && (last_trap.eflags & 0x200) && mask_after == 0,
           "unmasked: CS[23:16]=0, IF=1, HYPERVISOR_iret restores mask 0",
           "cs 0x%x eflags 0x%x mask after %u", last_trap.cs, last_trap.eflags, mask_after);
}

extern char user_prog[], u_int80a[], u_int80b[], u_int81[], u_int41[], u_int82[], u_pf[], u_int3[], u_ds[], u_exit[];
extern char u_end80a[], u_end80b[], u_end81[], u_end41[], u_end82[], u_endpf[], u_end3[], u_endds[];

struct ustep { const char *name; uint32_t vec, err; char *eip, *resume; int mode; };
static const struct ustep steps[] = {
    { "ring 3 int $0x80 (DPL 3), back by real iret",   0x80, 0, u_end80a, 0, IRET_REAL },
    { "ring 3 int $0x80 again, back by HYPERVISOR_iret", 0x80, 0, u_end80b, 0, IRET_HYPERCALL },
    { "ring 3 int $0x81 (DPL 3, events masked)",       0x81, 0, u_end81, 0, IRET_REAL },
    { "ring 3 int $0x41 to a DPL-1 entry -> #GP(0x20a)", 13, 0x41 * 8 + 2, u_int41, u_end41, IRET_HYPERCALL },
    { "ring 3 int $0x82 -> #GP(0x412)",                13, 0x82 * 8 + 2, u_int82, u_end82, IRET_REAL },
    { "ring 3 read of a supervisor page -> #PF(5)",    14, 5, u_pf, u_endpf, IRET_HYPERCALL },
    { "ring 3 int3 -> #BP",                            3, 0, u_end3, 0, IRET_REAL },
    { "ring 3 load of a DPL-1 selector -> #GP(0xe020)", 13, 0xE020, u_ds, u_endds, IRET_HYPERCALL },
    { "ring 3 exit via int $0x80",                     0x80, 0, u_exit + 2, 0, IRET_HYPERCALL },
};
#define NSTEPS (int)(sizeof steps / sizeof steps[0])
static int step;

static struct regs *user_trap(struct regs *r)
{
    const struct ustep *s = &steps[step];
    uint32_t cr2 = vcpu0->cr2;
    int ok = r->vector == s->vec && r->error == s->err && r->eip == (uint32_t)s->eip &&
             (r->cs & 0xFFFF) == FLAT_USER_CS && r->ss == FLAT_USER_DS &&
             r->esp == (uint32_t)ustack + PAGE_SIZE;
    /* Xen-built frames: CS[23:16] = saved mask and EFLAGS.IF = !mask. The
     * direct int 0x80 gate (flags 3) pushes a plain hardware frame instead. */
    if (r->vector != 0x80) ok = ok && ((r->cs >> 16) & 0xFF) == !(r->eflags & 0x200);
    if (s->vec == 14) ok = ok && cr2 == 0xC0100000;
    /* State set by the previous return must have survived it. */
    if (step == 1) ok = ok && r->ecx == 0xAAAA1111 && r->ebx == 0x11111111;
    if (step == 2) ok = ok && r->ecx == 0xBBBB2222 && r->eax == 0xCAFE0002;
    CHECKF(ok, s->name, "vector 0x%x error 0x%x eip 0x%08x cs 0x%x ss 0x%x esp 0x%08x ecx 0x%x eax 0x%x cr2 0x%x; want vector 0x%x error 0x%x eip 0x%08x",
           r->vector, r->error, r->eip, r->cs, r->ss, r->esp, r->ecx, r->eax, cr2, s->vec, s->err, (uint32_t)s->eip);
    if (step == 0) r->ecx = 0xAAAA1111;
    if (step == 1) { r->ecx = 0xBBBB2222; r->eax = 0xCAFE0002; }
    if (s->resume) r->eip = (uint32_t)s->resume;
    iret_mode = s->mode;
    if (++step == NSTEPS) { iret_mode = IRET_HYPERCALL; leave_user(0); }
    return r;
}

static void ring3(void)
{
    map_user_text();
    CHECK_EQ(HYPERVISOR_update_va_mapping((uint32_t)ustack, make_pte(virt_to_mfn(ustack),
             _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG), 0,
             "update_va_mapping a user stack page (U bit)");
    set_trap(0x80, 3, user_trap);        /* DPL 3, events not masked (direct int 0x80 path) */
    set_trap(0x81, 3 | 4, user_trap);
    set_trap(0x41, 1 | 4, user_trap);
    set_handler(3, user_trap);
    set_handler(13, user_trap);
    set_handler(14, user_trap);
    enter_user((uint32_t)user_prog, (uint32_t)ustack + PAGE_SIZE);
    CHECK_EQ(step, NSTEPS, "ring 3 program ran every step");
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    ring1_exceptions();
    ring1_returns();
    ring3();
}
