/* multicall: a context switch batched as Linux does it (stack_switch,
 * update_descriptor for TLS, mmuext NEW_BASEPTR), per-entry results, nested
 * and unknown entries (§12). */
#include "guest.h"

const char guest_name[] = "multicall";

static uint8_t stack2[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint8_t ustack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static uint32_t tls_block[4] = { 0x11110000, 0x22220000, 0x33330000, 0x44440000 };
extern char mc_user[];
static uint32_t trap_frame_at;

static struct regs *on_int80(struct regs *r) { trap_frame_at = (uint32_t)r; leave_user(0); }

static void check_results(const char *name, struct multicall_entry *mc, const int32_t *want, int n)
{
    int ok = 1;
    char det[160] = "";
    for (int i = 0; i < n; i++) ok &= mc[i].result == want[i];
    for (int i = 0, len = 0; i < n && len < (int)sizeof det - 24; i++)
        len += snprintf(det + len, sizeof det - len, "[%d] %d/%d ", i, mc[i].result, want[i]);
    CHECKF(ok, name, "result/want %s", det);
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    CHECK_EQ(gdt_install(), 0, "set_gdt");

    struct aspace as;
    aspace_clone(&as);
    uint32_t *marker = alloc_page();
    marker[0] = 0x4D434D43;
    aspace_map(&as, USER_BASE, virt_to_mfn(marker), _PAGE_PRESENT | _PAGE_ACCESSED);
    CHECK_EQ(aspace_seal(&as), 0, "new page tables built and pinned");

    struct mmuext_op op = { MMUEXT_NEW_BASEPTR, virt_to_mfn(as.root), 0 };
    uint64_t tls = make_desc((uint32_t)tls_block, 0xFFFFF, DESC_DATA_RW, 3, DESC_G_32);
    uint64_t ma = virt_to_machine(&gdt[12]);
    struct multicall_entry mc[3] = {
        { HC_stack_switch, -1, { FLAT_KERNEL_DS, (uint32_t)stack2 + PAGE_SIZE } },
        { HC_update_descriptor, -1, { (uint32_t)ma, (uint32_t)(ma >> 32), (uint32_t)tls, (uint32_t)(tls >> 32) } },
        { HC_mmuext_op, -1, { (uint32_t)&op, 1, 0, DOMID_SELF } },
    };
    CHECK_EQ(HYPERVISOR_multicall(mc, 3), 0, "context-switch multicall returns 0");
    static const int32_t want_ok[3] = { 0, 0, 0 };
    check_results("stack_switch, update_descriptor, NEW_BASEPTR results all 0", mc, want_ok, 3);
    cur_root = as.root;
    CHECK_EQ(*(volatile uint32_t *)USER_BASE, 0x4D434D43, "NEW_BASEPTR took effect (new mapping visible)");
    uint32_t v;
    load_gs(12 * 8 + 3);
    asm volatile("movl %%gs:4, %0" : "=r"(v));
    load_gs(FLAT_KERNEL_DS);
    CHECK_EQ(v, tls_block[1], "TLS descriptor took effect (%gs:4)");

    map_user_text();
    CHECK_EQ(HYPERVISOR_update_va_mapping((uint32_t)ustack, make_pte(virt_to_mfn(ustack),
             _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG), 0, "map a user stack");
    set_trap(0x80, 3 | 4, on_int80);
    enter_user((uint32_t)mc_user, (uint32_t)ustack + PAGE_SIZE);
    CHECK_EQ(trap_frame_at + sizeof(struct regs), (uint32_t)stack2 + PAGE_SIZE, "stack_switch took effect (ring-3 trap frame on the new stack)");

    struct multicall_entry inner[1] = { { HC_xen_version, -1, { XENVER_version, 0 } } };
    struct multicall_entry mix[5] = {
        { HC_xen_version, -1, { XENVER_version, 0 } },
        { 64, -1, { 0 } },
        { HC_xen_version, -1, { XENVER_pagesize, 0 } },
        { HC_multicall, -1, { (uint32_t)inner, 1 } },
        { 0xFFFF, -1, { 0 } },
    };
    CHECK_EQ(HYPERVISOR_multicall(mix, 5), 0, "multicall with failing entries still returns 0");
    const int32_t want_mix[5] = { HYPERVISOR_xen_version(XENVER_version, 0), -ENOSYS, 4096, -EINVAL, -ENOSYS };
    check_results("results: version, op 64 -ENOSYS, pagesize, nested -EINVAL, op 0xffff -ENOSYS", mix, want_mix, 5);
    CHECK_EQ(inner[0].result, -1, "nested multicall entries were not run");
    CHECK_EQ(HYPERVISOR_multicall((struct multicall_entry *)0x1000, 1), -EFAULT, "unreadable multicall list gives -EFAULT");
}
