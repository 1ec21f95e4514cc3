/* Xen 3.1 x86_32 PV ABI constants and structures used by the guest kit.
 * Section numbers cited below are those of docs/xen-abi.md. */
#ifndef XEN_H
#define XEN_H
#include <stdint.h>
#include <stddef.h>

/* §1.1 hypercall numbers */
#define HC_set_trap_table        0
#define HC_mmu_update            1
#define HC_set_gdt               2
#define HC_stack_switch          3
#define HC_set_callbacks         4
#define HC_fpu_taskswitch        5
#define HC_update_descriptor    10
#define HC_memory_op            12
#define HC_multicall            13
#define HC_update_va_mapping    14
#define HC_set_timer_op         15
#define HC_xen_version          17
#define HC_console_io           18
#define HC_vm_assist            21
#define HC_iret                 23
#define HC_vcpu_op              24
#define HC_mmuext_op            26
#define HC_sched_op             29
#define HC_callback_op          30
#define HC_event_channel_op     32
#define HC_physdev_op           33

/* §2 errors (negated in EAX) */
#define EPERM    1
#define ENOENT   2
#define EFAULT  14
#define EEXIST  17
#define EINVAL  22
#define ENOSYS  38
#define ESRCH    3
#define ENODEV  19
#define EACCES  13
#define ENOSPC  28
#define EOPNOTSUPP 95

/* §3 address space and selectors */
#define VIRT_BASE        0xC0000000u
#ifdef CONFIG_PAE
#define HV_VIRT_START    0xF5800000u
#define M2P_VIRT_START   0xF5800000u
#define XEN_MAGIC        "xen-3.0-x86_32p"
#else
#define HV_VIRT_START    0xFC000000u
#define M2P_VIRT_START   0xFC000000u
#define XEN_MAGIC        "xen-3.0-x86_32"
#endif
#define FLAT_KERNEL_CS   0xE019
#define FLAT_KERNEL_DS   0xE021
#define FLAT_USER_CS     0xE02B
#define FLAT_USER_DS     0xE033
#define FIRST_RESERVED_GDT_ENTRY 7168

/* §4.1 start_info */
struct start_info {
    char     magic[32];
    uint32_t nr_pages;
    uint32_t shared_info;        /* machine address */
    uint32_t flags;
    uint32_t store_mfn;
    uint32_t store_evtchn;
    uint32_t console_mfn;
    uint32_t console_evtchn;
    uint32_t pt_base;            /* VA */
    uint32_t nr_pt_frames;
    uint32_t mfn_list;           /* VA of the p2m */
    uint32_t mod_start, mod_len;
    char     cmd_line[1024];
};

/* §4.3 vcpu_info, §4.2 shared_info */
struct vcpu_time_info {
    uint32_t version, pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t   tsc_shift;
    int8_t   pad1[3];
} __attribute__((packed));

struct vcpu_info {
    uint8_t  evtchn_upcall_pending;
    uint8_t  evtchn_upcall_mask;
    uint16_t pad;
    uint32_t evtchn_pending_sel;
    uint32_t cr2;
    uint32_t arch_pad[5];
    struct vcpu_time_info time;
};

struct shared_info {
    struct vcpu_info vcpu_info[32];
    uint32_t evtchn_pending[32];
    uint32_t evtchn_mask[32];
    uint32_t wc_version, wc_sec, wc_nsec;
    uint32_t max_pfn, pfn_to_mfn_frame_list_list, nmi_reason;
};

/* §4.4 op structs */
struct trap_info { uint8_t vector, flags; uint16_t cs; uint32_t address; };
struct multicall_entry { uint32_t op; int32_t result; uint32_t args[6]; };
struct mmu_update { uint64_t ptr, val; } __attribute__((packed, aligned(4)));
struct mmuext_op { uint32_t cmd, arg1, arg2; };
struct callback_register { uint16_t type, flags; uint32_t cs, eip; };
struct sched_shutdown { uint32_t reason; };
struct sched_poll { uint32_t *ports; uint32_t nr_ports; uint64_t timeout; } __attribute__((packed, aligned(4)));

/* §4.5 event-channel ops */
struct evtchn_bind_virq { uint32_t virq, vcpu, port; };
struct evtchn_bind_ipi { uint32_t vcpu, port; };
struct evtchn_alloc_unbound { uint16_t dom, remote_dom; uint32_t port; };
struct evtchn_port_op { uint32_t port; };            /* close, send, unmask */
struct evtchn_status {
    uint16_t dom; uint16_t pad; uint32_t port, status, vcpu;
    union { uint16_t unbound_dom; uint32_t pirq; uint32_t virq; struct { uint16_t dom; uint16_t pad; uint32_t port; } interdomain; } u;
};
#define EVTCHNOP_bind_virq       1
#define EVTCHNOP_close           3
#define EVTCHNOP_send            4
#define EVTCHNOP_status          5
#define EVTCHNOP_alloc_unbound   6
#define EVTCHNOP_bind_ipi        7
#define EVTCHNOP_unmask          9
#define EVTCHNSTAT_closed 0
#define EVTCHNSTAT_unbound 1
#define EVTCHNSTAT_virq 4
#define EVTCHNSTAT_ipi 5
#define NR_EVENT_CHANNELS 1024
#define VIRQ_TIMER 0

/* §5 commands and flags */
#define SCHEDOP_yield    0
#define SCHEDOP_block    1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll     3
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_crash    3

#define MMU_NORMAL_PT_UPDATE 0
#define MMU_MACHPHYS_UPDATE  1
#define MMUEXT_PIN_L1_TABLE  0
#define MMUEXT_PIN_L2_TABLE  1
#define MMUEXT_PIN_L3_TABLE  2
#define MMUEXT_UNPIN_TABLE   4
#define MMUEXT_NEW_BASEPTR   5
#define MMUEXT_TLB_FLUSH_LOCAL 6
#define MMUEXT_INVLPG_LOCAL  7
#define MMUEXT_SET_LDT      13
#define UVMF_NONE       0
#define UVMF_TLB_FLUSH  1
#define UVMF_INVLPG     2
#define DOMID_SELF 0x7FF0

#define VMASST_CMD_enable 0
#define VMASST_TYPE_writable_pagetables 2

#define CONSOLEIO_write 0
#define CONSOLEIO_read  1
#define XENVER_version  0
#define XENVER_pagesize 7

#define CALLBACKOP_register 0
#define CALLBACKTYPE_event    0
#define CALLBACKTYPE_failsafe 1
#define CALLBACKF_mask_events 1
#define CALLBACKOP_unregister 1
#define CALLBACKTYPE_syscall  2   /* x86_64 guests only */
#define CALLBACKTYPE_nmi      4
#define CALLBACKTYPE_sysenter 5   /* compat guests of 64-bit Xen */
#define CALLBACKTYPE_syscall32 7  /* compat guests of 64-bit Xen */
struct callback_unregister { uint16_t type, _unused; };

/* VCPUOP_initialise's struct vcpu_guest_context, x86_32 (docs/xen-abi.md §16): 2800 bytes;
 * VCPUOP_get_runstate_info's struct vcpu_runstate_info (44 bytes). */
struct cpu_user_regs {
    uint32_t ebx, ecx, edx, esi, edi, ebp, eax;
    uint16_t error_code, entry_vector;
    uint32_t eip;
    uint16_t cs; uint8_t saved_upcall_mask, _pad0;
    uint32_t eflags, esp;
    uint16_t ss, _pad1, es, _pad2, ds, _pad3, fs, _pad4, gs, _pad5;
};
struct vcpu_guest_context {
    uint8_t fpu_ctxt[512];
    uint32_t flags;
    struct cpu_user_regs user_regs;
    struct trap_info trap_ctxt[256];
    uint32_t ldt_base, ldt_ents;
    uint32_t gdt_frames[16], gdt_ents;
    uint32_t kernel_ss, kernel_sp;
    uint32_t ctrlreg[8], debugreg[8];
    uint32_t event_callback_cs, event_callback_eip;
    uint32_t failsafe_callback_cs, failsafe_callback_eip;
    uint32_t vm_assist;
};
_Static_assert(sizeof(struct vcpu_guest_context) == 2800, "vcpu_guest_context is 2800 bytes");
struct vcpu_runstate_info { int state; uint64_t state_entry_time; uint64_t time[4]; } __attribute__((packed));

/* §4.7 console ring */
struct xencons_interface {
    char in[1024];
    char out[2048];
    uint32_t in_cons, in_prod, out_cons, out_prod;
};

/* Page-table entry bits (IA-32) */
#define _PAGE_PRESENT  0x001
#define _PAGE_RW       0x002
#define _PAGE_USER     0x004
#define _PAGE_ACCESSED 0x020
#define _PAGE_DIRTY    0x040
#define _PAGE_PSE      0x080
#define PAGE_SIZE 4096
#define PAGE_SHIFT 12

#endif
