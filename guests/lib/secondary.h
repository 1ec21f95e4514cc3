/* A secondary vCPU's start-up context for VCPUOP_initialise (docs/xen-abi.md §16), shared by the
 * SMP guests: flat kernel segments, its own stack (top = esp), its id in ESI for secondary_start
 * (lib/secondary_entry.inc), the domain's page tables, and secondary_callback for events and
 * failsafe. Include only from guests that link lib/secondary_entry.inc. */
#ifndef SECONDARY_H
#define SECONDARY_H
#include "guest.h"

extern char secondary_start[], secondary_callback[];

static inline void fill_secondary_context(struct vcpu_guest_context *ctx, int cpu, uint32_t esp, uint32_t root_mfn)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->user_regs.eip = (uint32_t)secondary_start;
    ctx->user_regs.esp = esp;
    ctx->user_regs.esi = (uint32_t)cpu;
    ctx->user_regs.cs = FLAT_KERNEL_CS;
    ctx->user_regs.ss = ctx->user_regs.ds = ctx->user_regs.es = FLAT_KERNEL_DS;
    ctx->user_regs.eflags = 0x202;
    ctx->kernel_ss = FLAT_KERNEL_DS;
    ctx->kernel_sp = esp;
    ctx->ctrlreg[3] = (root_mfn << 12) | (root_mfn >> 20);   /* xen_pfn_to_cr3 */
    ctx->event_callback_cs = ctx->failsafe_callback_cs = FLAT_KERNEL_CS;
    ctx->event_callback_eip = ctx->failsafe_callback_eip = (uint32_t)secondary_callback;
}
#endif
