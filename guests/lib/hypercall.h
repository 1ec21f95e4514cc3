/* Hypercall wrappers: call hypercall_page + nr*32 with arguments in
 * EBX, ECX, EDX, ESI, EDI (docs/xen-abi.md §1). The stub address travels in EAX,
 * which the stub overwrites with the hypercall number and Xen with the result.
 * All argument registers are treated as clobbered. */
#ifndef HYPERCALL_H
#define HYPERCALL_H
#include "xen.h"

extern char hypercall_page[4096];

static inline long hypercall(unsigned nr, long a1, long a2, long a3, long a4, long a5)
{
    long r = (long)(hypercall_page + nr * 32);
    asm volatile("call *%%eax"
                 : "+a"(r), "+b"(a1), "+c"(a2), "+d"(a3), "+S"(a4), "+D"(a5)
                 : : "memory", "cc");
    return r;
}
#define HC0(n)                 hypercall(n, 0, 0, 0, 0, 0)
#define HC1(n, a)              hypercall(n, (long)(a), 0, 0, 0, 0)
#define HC2(n, a, b)           hypercall(n, (long)(a), (long)(b), 0, 0, 0)
#define HC3(n, a, b, c)        hypercall(n, (long)(a), (long)(b), (long)(c), 0, 0)
#define HC4(n, a, b, c, d)     hypercall(n, (long)(a), (long)(b), (long)(c), (long)(d), 0)
#define HC5(n, a, b, c, d, e)  hypercall(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e))

static inline long HYPERVISOR_set_trap_table(const struct trap_info *t) { return HC1(HC_set_trap_table, t); }
static inline long HYPERVISOR_mmu_update(struct mmu_update *r, int n, int *done) { return HC4(HC_mmu_update, r, n, done, DOMID_SELF); }
static inline long HYPERVISOR_set_gdt(uint32_t *frames, int entries) { return HC2(HC_set_gdt, frames, entries); }
static inline long HYPERVISOR_stack_switch(uint32_t ss, uint32_t esp) { return HC2(HC_stack_switch, ss, esp); }
static inline long HYPERVISOR_set_callbacks(uint32_t ecs, void *eip, uint32_t fcs, void *feip) { return HC4(HC_set_callbacks, ecs, eip, fcs, feip); }
static inline long HYPERVISOR_fpu_taskswitch(int set) { return HC1(HC_fpu_taskswitch, set); }
static inline long HYPERVISOR_update_descriptor(uint64_t ma, uint64_t desc)
{ return HC4(HC_update_descriptor, (uint32_t)ma, (uint32_t)(ma >> 32), (uint32_t)desc, (uint32_t)(desc >> 32)); }
static inline long HYPERVISOR_multicall(struct multicall_entry *m, int n) { return HC2(HC_multicall, m, n); }
static inline long HYPERVISOR_update_va_mapping(uint32_t va, uint64_t pte, uint32_t flags)
{ return HC4(HC_update_va_mapping, va, (uint32_t)pte, (uint32_t)(pte >> 32), flags); }
static inline long HYPERVISOR_set_timer_op(uint64_t ns) { return HC2(HC_set_timer_op, (uint32_t)ns, (uint32_t)(ns >> 32)); }
static inline long HYPERVISOR_xen_version(int cmd, void *arg) { return HC2(HC_xen_version, cmd, arg); }
static inline long HYPERVISOR_console_io(int cmd, int n, char *buf) { return HC3(HC_console_io, cmd, n, buf); }
static inline long HYPERVISOR_vm_assist(int cmd, int type) { return HC2(HC_vm_assist, cmd, type); }
static inline long HYPERVISOR_mmuext_op(struct mmuext_op *op, int n, int *done) { return HC4(HC_mmuext_op, op, n, done, DOMID_SELF); }
static inline long HYPERVISOR_sched_op(int cmd, void *arg) { return HC2(HC_sched_op, cmd, arg); }
static inline long HYPERVISOR_callback_op(int cmd, void *arg) { return HC2(HC_callback_op, cmd, arg); }
static inline long HYPERVISOR_event_channel_op(int cmd, void *arg) { return HC2(HC_event_channel_op, cmd, arg); }

#endif
