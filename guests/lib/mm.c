/* Page-table helpers: walking, RO/RW flips, MMU hypercalls, cloned address spaces (§7, §10). */
#include "guest.h"

#define POOL_PAGES 48
static uint8_t pool[POOL_PAGES][PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static int pool_next;

void *alloc_page(void)
{
    if (pool_next == POOL_PAGES) { printf("FAIL %s: page pool exhausted\n", guest_name); crash(); }
    return memset(pool[pool_next++], 0, PAGE_SIZE);
}

/* Tables are found through the M2P: a table's VA is VIRT_BASE + pfn*4096
 * (true for the builder's tables and for our bss pages). */
static pte_t *table_of(pte_t e) { return (e & _PAGE_PRESENT) ? mfn_to_virt(pte_mfn(e)) : 0; }

pte_t *lookup_pte(pte_t *root, uint32_t va)
{
#ifdef CONFIG_PAE
    pte_t *l2 = table_of(root[va >> 30]);
    if (!l2) return 0;
    pte_t *l1 = table_of(l2[(va >> 21) & 511]);
    return l1 ? &l1[(va >> 12) & 511] : 0;
#else
    pte_t *l1 = table_of(root[va >> 22]);
    return l1 ? &l1[(va >> 12) & 1023] : 0;
#endif
}

long make_readonly(void *va)
{
    return HYPERVISOR_update_va_mapping((uint32_t)va, make_pte(virt_to_mfn(va), _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG);
}

long make_writable(void *va)
{
    return HYPERVISOR_update_va_mapping((uint32_t)va,
            make_pte(virt_to_mfn(va), _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG);
}

long mmuext(uint32_t cmd, uint32_t arg1, uint32_t arg2)
{
    struct mmuext_op op = { cmd, arg1, arg2 };
    int done = -1;
    long rc = HYPERVISOR_mmuext_op(&op, 1, &done);
    if (rc == 0 && done != 1) return -1000;   /* caller reports: done count wrong */
    return rc;
}

long mmu_update1(uint64_t ptr, uint64_t val)
{
    struct mmu_update u = { ptr, val };
    int done = -1;
    long rc = HYPERVISOR_mmu_update(&u, 1, &done);
    if (rc == 0 && done != 1) return -1000;
    return rc;
}

void aspace_clone(struct aspace *as)
{
    memset(as, 0, sizeof *as);
    as->root = alloc_page();
#ifdef CONFIG_PAE
    /* L3 slots 0-2 are shared; slot 3's L2 may not be shared between L3s
     * (§10.2), so copy its guest entries 0-427. L3 entries carry only P. */
    for (int i = 0; i < 3; i++) as->root[i] = cur_root[i];
    pte_t *old = table_of(cur_root[3]), *l2 = alloc_page();
    for (int i = 0; i < 428; i++) l2[i] = old[i];
    as->pae_l2[3] = l2;
    as->root[3] = make_pte(virt_to_mfn(l2), _PAGE_PRESENT);
#else
    for (int i = 0; i < 1008; i++) as->root[i] = cur_root[i];   /* guest slots only */
#endif
}

#define TABLE_FLAGS (_PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED)

void aspace_map(struct aspace *as, uint32_t va, uint32_t mfn, uint32_t flags)
{
    if (!as->l1_user) {
        as->l1_user = alloc_page();
        as->user_base = USER_BASE;
#ifdef CONFIG_PAE
        as->pae_l2[1] = alloc_page();
        as->root[1] = make_pte(virt_to_mfn(as->pae_l2[1]), _PAGE_PRESENT);
        as->pae_l2[1][(USER_BASE >> 21) & 511] = make_pte(virt_to_mfn(as->l1_user), TABLE_FLAGS);
#else
        as->root[USER_BASE >> 22] = make_pte(virt_to_mfn(as->l1_user), TABLE_FLAGS);
#endif
    }
    as->l1_user[(va >> 12) & (PTRS_PER_PAGE - 1)] = make_pte(mfn, flags);
}

long aspace_seal(struct aspace *as)
{
    void *pages[] = { as->l1_user, as->pae_l2[1], as->pae_l2[3], as->root };
    for (unsigned i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        if (!pages[i]) continue;
        long rc = make_readonly(pages[i]);
        if (rc) return rc;
    }
#ifdef CONFIG_PAE
    return mmuext(MMUEXT_PIN_L3_TABLE, virt_to_mfn(as->root), 0);
#else
    return mmuext(MMUEXT_PIN_L2_TABLE, virt_to_mfn(as->root), 0);
#endif
}

long aspace_switch(struct aspace *as)
{
    long rc = mmuext(MMUEXT_NEW_BASEPTR, virt_to_mfn(as->root), 0);
    if (rc == 0) cur_root = as->root;
    return rc;
}

void map_user_text(void)
{
    for (char *p = __user_start; p < __user_end; p += PAGE_SIZE) {
        long rc = HYPERVISOR_update_va_mapping((uint32_t)p,
                make_pte(virt_to_mfn(p), _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED), UVMF_INVLPG);
        if (rc) { printf("FAIL %s: map user text (rc %ld)\n", guest_name, rc); crash(); }
    }
}
