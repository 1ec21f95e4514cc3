/* Trap table, handler dispatch and the expected-trap machinery (§8). */
#include "guest.h"

static trap_fn handlers[NR_VECS];
int iret_mode = IRET_HYPERCALL;
volatile struct trap_record last_trap;
volatile uint32_t trap_fixup;
volatile int expected_vector = -1;
volatile uint32_t probe_start, probe_end;
uint8_t trap_stack[2 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static struct regs *unexpected(struct regs *r)
{
    uint32_t cr2 = HYPERVISOR_shared_info ? vcpu0->cr2 : 0;
    printf("FAIL %s: unexpected trap (vector %u error 0x%x eip 0x%08x cs 0x%x eflags 0x%x cr2 0x%08x)\n",
           guest_name, r->vector, r->error, r->eip, r->cs, r->eflags, cr2);
    crash();
}

struct regs *trap_expected(struct regs *r)
{
    last_trap.vector = r->vector;
    last_trap.error = r->error;
    last_trap.eip = r->eip;
    last_trap.cs = r->cs;
    last_trap.eflags = r->eflags;
    last_trap.esp = (r->cs & 3) == 3 ? r->esp : 0;
    last_trap.ss = (r->cs & 3) == 3 ? r->ss : 0;
    last_trap.cr2 = HYPERVISOR_shared_info ? vcpu0->cr2 : 0;
    last_trap.count++;
    if (trap_fixup) { r->eip = trap_fixup; trap_fixup = 0; }
    r->eflags &= ~0x100u;                  /* stop single-stepping */
    return r;
}

struct regs *trap_dispatch(struct regs *r)
{
    unsigned vec = r->vector;
    if ((int)vec == expected_vector) r = trap_expected(r);
    else if (vec < NR_VECS && handlers[vec]) r = handlers[vec](r);
    else r = unexpected(r);
    r->vector = iret_mode;
    /* A real iret leaves the upcall mask alone: restore it from the saved copy in CS[23:16]. */
    if (iret_mode == IRET_REAL && HYPERVISOR_shared_info)
        vcpu0->evtchn_upcall_mask = (r->cs >> 16) & 0xFF;
    return r;
}

void set_handler(unsigned vec, trap_fn fn) { handlers[vec] = fn; }

void set_trap(unsigned vec, unsigned flags, trap_fn fn)
{
    struct trap_info t[2] = { { vec, flags, FLAT_KERNEL_CS, (uint32_t)trap_stub(vec) }, { 0, 0, 0, 0 } };
    long rc = HYPERVISOR_set_trap_table(t);
    if (rc) { printf("FAIL %s: set_trap_table vector %u (rc %ld)\n", guest_name, vec, rc); crash(); }
    handlers[vec] = fn;
}

static struct regs *upcall_entry(struct regs *r) { evtchn_scan(r); return r; }

void traps_init(void)
{
    /* Vectors 0-19 with DPL 0 and events masked (flags = DPL | 4), except int3
     * and into, which are DPL 3 as in Linux. One table for all. */
    struct trap_info t[21];
    for (int v = 0; v < 20; v++)
        t[v] = (struct trap_info){ v, (v == 3 || v == 4) ? 3 | 4 : 0 | 4, FLAT_KERNEL_CS, (uint32_t)trap_stub(v) };
    t[20] = (struct trap_info){ 0, 0, 0, 0 };
    long rc = HYPERVISOR_set_trap_table(t);
    if (rc) { printf("FAIL %s: set_trap_table (rc %ld)\n", guest_name, rc); crash(); }
    rc = HYPERVISOR_set_callbacks(FLAT_KERNEL_CS, hypervisor_callback, FLAT_KERNEL_CS, failsafe_callback);
    if (rc) { printf("FAIL %s: set_callbacks (rc %ld)\n", guest_name, rc); crash(); }
    rc = HYPERVISOR_stack_switch(FLAT_KERNEL_DS, TRAP_STACK_TOP);
    if (rc) { printf("FAIL %s: stack_switch (rc %ld)\n", guest_name, rc); crash(); }
    handlers[VEC_UPCALL] = upcall_entry;
}

void expect_trap(const char *name, int vec, uint32_t err, uint32_t eip)
{
    CHECKF(last_trap.count == 1 && (int)last_trap.vector == vec && last_trap.error == err &&
           last_trap.eip == eip && (last_trap.cs & 0xFFFF) == FLAT_KERNEL_CS, name,
           "count %d vector %u error 0x%x eip 0x%08x cs 0x%x; want vector %d error 0x%x eip 0x%08x",
           last_trap.count, last_trap.vector, last_trap.error, last_trap.eip, last_trap.cs, vec, err, eip);
}
