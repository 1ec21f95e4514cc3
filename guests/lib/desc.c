/* Guest GDT page and descriptor helpers (§11). */
#include "guest.h"

uint64_t gdt[512] __attribute__((aligned(PAGE_SIZE)));

uint64_t make_desc(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, unsigned flags_g)
{
    uint32_t lo = (limit & 0xFFFF) | (base << 16);
    uint32_t hi = ((base >> 16) & 0xFF) | (type << 8) | (dpl << 13) | (1u << 15)
                | (limit & 0xF0000) | (flags_g << 20) | (base & 0xFF000000);
    return ((uint64_t)hi << 32) | lo;
}

/* The frame must be read-only everywhere before set_gdt. */
long gdt_install(void)
{
    long rc = make_readonly(gdt);
    if (rc) return rc;
    uint32_t frames[1] = { virt_to_mfn(gdt) };
    return HYPERVISOR_set_gdt(frames, 512);
}

long gdt_set(unsigned idx, uint64_t desc) { return HYPERVISOR_update_descriptor(virt_to_machine(&gdt[idx]), desc); }
