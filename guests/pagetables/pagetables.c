/* pagetables: build and pin new tables from the Xen-provided ones, switch to
 * them, and exercise update_va_mapping, mmu_update, MACHPHYS_UPDATE, writable
 * page tables and the type rules of §10. */
#include "guest.h"

const char guest_name[] = "pagetables";

#define PTE_KERNEL (_PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY)

static uint32_t *data_page(uint32_t magic) { uint32_t *p = alloc_page(); p[0] = magic; return p; }
static uint32_t peek(uint32_t va) { return *(volatile uint32_t *)va; }

void guest_main(void)
{
    map_shared_info();
    traps_init();

    /* Copy the top level (the seed's method) and hang a new L1 below 1 GB. */
    struct aspace as;
    aspace_clone(&as);
    uint32_t *p0 = data_page(0xA0A0A0A0), *p1 = data_page(0xB1B1B1B1), *p2 = data_page(0xC2C2C2C2), *p3 = data_page(0xD3D3D3D3);
    aspace_map(&as, USER_BASE, virt_to_mfn(p0), PTE_KERNEL);
    pte_t *l1 = as.l1_user;

    CHECK_EQ(make_readonly(l1), 0, "update_va_mapping: new L1 read-only");
    CHECK_EQ(mmuext(MMUEXT_PIN_L1_TABLE, virt_to_mfn(l1), 0), 0, "pin L1");
#ifdef CONFIG_PAE
    CHECK_EQ(make_readonly(as.pae_l2[1]), 0, "update_va_mapping: new L2 read-only");
    CHECK_EQ(mmuext(MMUEXT_PIN_L2_TABLE, virt_to_mfn(as.pae_l2[1]), 0), 0, "pin L2");
    CHECK_EQ(make_readonly(as.pae_l2[3]), 0, "update_va_mapping: private slot-3 L2 read-only");
    CHECK_EQ(make_readonly(as.root), 0, "update_va_mapping: new L3 read-only");
    CHECK_EQ(mmuext(MMUEXT_PIN_L3_TABLE, virt_to_mfn(as.root), 0), 0, "pin L3");
#else
    CHECK_EQ(make_readonly(as.root), 0, "update_va_mapping: new L2 read-only");
    CHECK_EQ(mmuext(MMUEXT_PIN_L2_TABLE, virt_to_mfn(as.root), 0), 0, "pin L2");
#endif
    CHECK_EQ(aspace_switch(&as), 0, "MMUEXT_NEW_BASEPTR to the new tables");
    CHECK_EQ(peek(USER_BASE), 0xA0A0A0A0, "mapping built before pinning works");
    CHECK_EQ(peek((uint32_t)_text), *(uint32_t *)_text, "kernel still mapped");

    CHECK_EQ(HYPERVISOR_update_va_mapping(USER_BASE + 0x1000, make_pte(virt_to_mfn(p1), PTE_KERNEL), UVMF_INVLPG), 0,
             "update_va_mapping a fresh mapping");
    CHECK_EQ(peek(USER_BASE + 0x1000), 0xB1B1B1B1, "fresh mapping readable");

    uint64_t ptr = virt_to_machine(&l1[2]) | MMU_NORMAL_PT_UPDATE;
    CHECK_EQ(mmu_update1(ptr, make_pte(virt_to_mfn(p2), PTE_KERNEL)), 0, "mmu_update NORMAL_PT_UPDATE on an L1 entry");
    CHECK_EQ(peek(USER_BASE + 0x2000), 0xC2C2C2C2, "mmu_update mapping readable");
    CHECK_EQ(l1[2] & PTE_ADDR_MASK, (pte_t)virt_to_mfn(p2) << PAGE_SHIFT, "L1 entry visible through the read-only mapping");

    uint32_t mfn2 = virt_to_mfn(p2), pfn2 = mfn_to_pfn(mfn2);
    CHECK_EQ(mmu_update1(((uint64_t)mfn2 << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE, 0x12345), 0, "MMU_MACHPHYS_UPDATE");
    CHECK_EQ(mfn_to_pfn(mfn2), 0x12345, "M2P shows the new pfn");
    CHECK_EQ(mmu_update1(((uint64_t)mfn2 << PAGE_SHIFT) | MMU_MACHPHYS_UPDATE, pfn2), 0, "MMU_MACHPHYS_UPDATE restore");

    /* Writable page tables: a plain store into the pinned, read-only L1.
     * On PAE the high half goes first, as Linux does. */
    CHECK_EQ(HYPERVISOR_vm_assist(VMASST_CMD_enable, VMASST_TYPE_writable_pagetables), 0, "vm_assist enable writable_pagetables");
    pte_t npte = make_pte(virt_to_mfn(p3), PTE_KERNEL);
    volatile uint32_t *half = (volatile uint32_t *)&l1[3];
    last_trap.count = 0;
#ifdef CONFIG_PAE
    half[1] = (uint32_t)(npte >> 32);
#endif
    half[0] = (uint32_t)npte;
    CHECK_EQ(last_trap.count, 0, "direct store into a pinned L1 took no fault");
    CHECK_EQ(peek(USER_BASE + 0x3000), 0xD3D3D3D3, "store-emulated mapping readable");

    CHECK_EQ(HYPERVISOR_update_va_mapping(USER_BASE + 0x4000, make_pte(virt_to_mfn(l1), PTE_KERNEL), UVMF_INVLPG), -EINVAL,
             "writable mapping of a pinned L1 refused");
    CHECK_EQ(HYPERVISOR_update_va_mapping(USER_BASE + 0x4000, make_pte(virt_to_mfn(l1), _PAGE_PRESENT | _PAGE_ACCESSED), UVMF_INVLPG), 0,
             "read-only mapping of a pinned L1 allowed");
    CHECK_EQ(gdt_install(), 0, "set_gdt");
    CHECK_EQ(HYPERVISOR_update_va_mapping(USER_BASE + 0x5000, make_pte(virt_to_mfn(gdt), PTE_KERNEL), UVMF_INVLPG), -EINVAL,
             "writable mapping of a GDT frame refused");
    CHECK_EQ(make_writable(as.root), -EINVAL, "writable mapping of the current top-level table refused");
    CHECK_EQ(HYPERVISOR_update_va_mapping(HV_VIRT_START, make_pte(virt_to_mfn(p1), PTE_KERNEL), UVMF_INVLPG), -EINVAL,
             "update_va_mapping at HYPERVISOR_VIRT_START refused");

    CHECK_EQ(mmuext(MMUEXT_PIN_L1_TABLE, virt_to_mfn(l1), 0), -EINVAL, "pinning a pinned L1 again gives -EINVAL");
    CHECK_EQ(mmuext(MMUEXT_UNPIN_TABLE, virt_to_mfn(l1), 0), 0, "unpin L1");
    CHECK_EQ(mmuext(MMUEXT_UNPIN_TABLE, virt_to_mfn(l1), 0), -EINVAL, "unpin an unpinned table gives -EINVAL");
    CHECK_EQ(peek(USER_BASE + 0x1000), 0xB1B1B1B1, "unpinned L1 still in use through the L2");

    /* A PSE entry in an L2 is rejected, and mmu_update reports done = 0. */
#ifdef CONFIG_PAE
    pte_t *l2 = as.pae_l2[1];
    unsigned slot = ((USER_BASE >> 21) & 511) + 1;
#else
    pte_t *l2 = as.root;
    unsigned slot = (USER_BASE >> 22) + 1;
#endif
    struct mmu_update u = { virt_to_machine(&l2[slot]), make_pte(virt_to_mfn(p1), PTE_KERNEL | _PAGE_PSE | _PAGE_USER) };
    int done = -1;
    long rc = HYPERVISOR_mmu_update(&u, 1, &done);
    CHECKF(rc == -EINVAL && done == 0, "PSE in an L2 entry gives -EINVAL", "rc %ld done %d", rc, done);
    CHECK_EQ(mmu_update1(virt_to_machine(&l2[slot]), make_pte(virt_to_mfn(l1), _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED)), 0,
             "L2 entry to an L1 via mmu_update");
    CHECK_EQ(peek(USER_BASE + (1u << (PAGE_SHIFT + (sizeof(pte_t) == 8 ? 9 : 10))) + 0x3000), 0xD3D3D3D3,
             "two L2 entries share one L1");
}
