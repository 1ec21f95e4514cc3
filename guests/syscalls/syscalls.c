/* syscalls: SYSENTER and SYSCALL from ring 3. On the 4.19 profile (the PAE build, which
 * runs there by default) callback_op registers the compat guest's sysenter (5) and
 * syscall32 (7) callbacks and the frames are those of xen/arch/x86/x86_64/entry.S and
 * compat/entry.S: SYSENTER reports EIP 0, CS 3, ESP 0, SS 0xE033; SYSCALL the next EIP,
 * CS 0xE02B, the user ESP and SS 0xE033; NT and AC stay in the frame, the handler runs
 * with NT clear and AC kept; with no callback both give #GP(0) (SYSENTER's with its
 * null frame, SYSCALL's at the instruction). On 3.1 (the non-PAE build) the callbacks
 * are -ENOSYS and the CPU faults: SYSENTER #GP(0), SYSCALL #UD. */
#include "guest.h"

const char guest_name[] = "syscalls";

#define NT 0x4000u
#define AC 0x40000u
#define IF 0x200u
#define VEC_SYSENTER 0x90
#define VEC_SYSCALL  0x91

extern char sc_user[], u_sysenter[], u_back1[], u_syscall[], u_back2[];
static uint8_t ustack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
#define USTACK_TOP ((uint32_t)ustack + PAGE_SIZE)
static int phase;            /* 0: callbacks registered, 1: no callbacks (4.19) */
static int seen_sysenter, seen_syscall;

static uint32_t own_flags(void) { uint32_t f; asm volatile("pushfl; popl %0" : "=r"(f)); return f; }

static long reg_cb(uint16_t type, uint16_t flags, uint32_t eip)
{
    struct callback_register cb = { type, flags, FLAT_KERNEL_CS, eip };
    return HYPERVISOR_callback_op(CALLBACKOP_register, &cb);
}

/* Resume the user program at eip with the user stack, clearing the flags it set. */
static struct regs *to_user(struct regs *r, uint32_t eip)
{
    r->eip = eip; r->cs = FLAT_USER_CS; r->ss = FLAT_USER_DS; r->esp = USTACK_TOP;
    r->eflags &= ~(NT | AC);
    return r;
}

static struct regs *on_sysenter(struct regs *r)
{
    uint32_t mine = own_flags();
    CHECKF(r->eip == 0 && (r->cs & 0xFFFF) == 3 && r->esp == 0 && r->ss == FLAT_USER_DS,
           "sysenter callback frame: EIP 0, CS 3, ESP 0, SS 0xE033", "eip %x cs %x esp %x ss %x", r->eip, r->cs, r->esp, r->ss);
    CHECKF((r->eflags & (NT | AC | IF)) == (NT | AC | IF) && ((r->cs >> 16) & 0xFF) == 0,
           "sysenter frame keeps NT and AC, IF = !saved mask (0)", "eflags %x cs %x", r->eflags, r->cs);
    CHECKF(vcpu0->evtchn_upcall_mask == 1 && !(mine & NT) && (mine & AC),
           "sysenter callback (CALLBACKF_mask_events) runs masked, NT clear, AC kept", "mask %d flags %x", vcpu0->evtchn_upcall_mask, mine);
    CHECK_EQ(r->edx, (uint32_t)u_back1, "sysenter keeps the user's EDX");
    seen_sysenter++;
    return to_user(r, r->edx);
}

static struct regs *on_syscall(struct regs *r)
{
    uint32_t mine = own_flags();
    CHECKF(r->eip == (uint32_t)u_back2 && (r->cs & 0xFFFF) == FLAT_USER_CS && r->esp == USTACK_TOP && r->ss == FLAT_USER_DS,
           "syscall32 callback frame: next EIP, CS 0xE02B, user ESP, SS 0xE033", "eip %x cs %x esp %x ss %x", r->eip, r->cs, r->esp, r->ss);
    CHECKF((r->eflags & (NT | AC)) == (NT | AC), "syscall frame keeps NT and AC", "eflags %x", r->eflags);
    CHECKF(vcpu0->evtchn_upcall_mask == 0 && !(mine & NT), "syscall32 callback (no mask flag) runs unmasked, NT clear",
           "mask %d flags %x", vcpu0->evtchn_upcall_mask, mine);
    seen_syscall++;
    r->eflags &= ~(NT | AC);
    return r;
}

/* #GP and #UD from the user program when no callback takes the instruction. */
static struct regs *on_fault(struct regs *r)
{
    int xen4 = HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000;
    if (r->eip == (uint32_t)u_syscall && (r->cs & 0xFFFF) == FLAT_USER_CS) {
        if (xen4) CHECKF(r->vector == 13 && r->error == 0, "syscall without a syscall32 callback: #GP(0) at the instruction",
                         "vector %u error %x", r->vector, r->error);
        else CHECKF(r->vector == 6, "syscall on 3.1: #UD at the instruction", "vector %u", r->vector);
        seen_syscall++;
        return to_user(r, (uint32_t)u_back2);
    }
    if (xen4) CHECKF(r->vector == 13 && r->error == 0 && r->eip == 0 && (r->cs & 0xFFFF) == 3 && r->esp == 0 && r->ss == FLAT_USER_DS,
                     "sysenter without a callback: #GP(0) with the null frame (EIP 0, CS 3, ESP 0)",
                     "vector %u error %x eip %x cs %x esp %x ss %x", r->vector, r->error, r->eip, r->cs, r->esp, r->ss);
    else CHECKF(r->vector == 13 && r->error == 0 && r->eip == (uint32_t)u_sysenter,
                "sysenter on 3.1: #GP(0) at the instruction", "vector %u error %x eip %x", r->vector, r->error, r->eip);
    seen_sysenter++;
    return to_user(r, (uint32_t)u_back1);
}

static struct regs *on_int80(struct regs *r)
{
    if (phase == 0 && HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000) {
        /* Callbacks cannot be unregistered (-EINVAL); a null address or selector disables them. */
        CHECK_EQ(reg_cb(CALLBACKTYPE_sysenter, 0, 0), 0, "register a null sysenter address");
        struct callback_register cb = { CALLBACKTYPE_syscall32, 0, 0, (uint32_t)trap_stub(VEC_SYSCALL) };
        CHECK_EQ(HYPERVISOR_callback_op(CALLBACKOP_register, &cb), 0, "register a null syscall32 selector");
        phase = 1;
        return to_user(r, (uint32_t)sc_user);
    }
    leave_user(0);
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    int xen4 = HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000;
#ifdef CONFIG_PAE
    CHECK(xen4, "the PAE build runs on the 4.19 profile");
#else
    CHECK(!xen4, "the non-PAE build runs on the 3.1 profile");
#endif
    long want = xen4 ? 0 : -ENOSYS;
    CHECK_EQ(reg_cb(CALLBACKTYPE_sysenter, CALLBACKF_mask_events, (uint32_t)trap_stub(VEC_SYSENTER)), want, "callback_op register sysenter (mask events)");
    CHECK_EQ(reg_cb(CALLBACKTYPE_syscall32, 0, (uint32_t)trap_stub(VEC_SYSCALL)), want, "callback_op register syscall32");
    CHECK_EQ(reg_cb(CALLBACKTYPE_syscall, 0, 0x1234), -ENOSYS, "callback_op register syscall (x86_64 only): -ENOSYS");
    struct callback_unregister un = { CALLBACKTYPE_sysenter, 0 };
    CHECK_EQ(HYPERVISOR_callback_op(CALLBACKOP_unregister, &un), xen4 ? -EINVAL : -ENOSYS, "callback_op unregister sysenter");
    CHECK_EQ(HYPERVISOR_callback_op(7, &un), xen4 ? -EINVAL : -ENOSYS, "callback_op unknown command");

    set_handler(VEC_SYSENTER, on_sysenter);
    set_handler(VEC_SYSCALL, on_syscall);
    set_handler(13, on_fault);
    set_handler(6, on_fault);
    set_trap(0x80, 3 | 4, on_int80);
    map_user_text();
    CHECK_EQ(HYPERVISOR_update_va_mapping((uint32_t)ustack, make_pte(virt_to_mfn(ustack),
             _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG), 0, "map a user stack");
    events_enable();
    enter_user((uint32_t)sc_user, USTACK_TOP);
    int rounds = xen4 ? 2 : 1;
    CHECK_EQ(seen_sysenter, rounds, "every sysenter reached the guest");
    CHECK_EQ(seen_syscall, rounds, "every syscall reached the guest");
    all_pass();
}
