/* segments: set_gdt, update_descriptor rules (§11), GDT and LDT selectors,
 * TLS-style GS entries, a far jump through a guest code descriptor. */
#include "guest.h"

const char guest_name[] = "segments";

static uint64_t ldt[512] __attribute__((aligned(PAGE_SIZE)));
static uint32_t buf[4] = { 0xB0F00000, 0xB0F00001, 0xB0F00002, 0xB0F00003 };
static uint32_t lbuf[2] = { 0x1D70000A, 0x1D70000B };
static uint32_t tls[4] = { 0x7150000, 0x7150001, 0x7150002, 0x7150003 };

#define SEL(idx, rpl) ((idx) * 8 + (rpl))
#define LSEL(idx, rpl) ((idx) * 8 + 4 + (rpl))
#define DPL(d) ((unsigned)((d) >> 45) & 3)

static uint32_t read_fs0(void) { uint32_t v; asm volatile("movl %%fs:0, %0" : "=r"(v)); return v; }
static uint32_t read_gs0(void) { uint32_t v; asm volatile("movl %%gs:0, %0" : "=r"(v)); return v; }

void guest_main(void)
{
    map_shared_info();
    traps_init();

    uint32_t frames[1] = { virt_to_mfn(gdt) };
    CHECK_EQ(HYPERVISOR_set_gdt(frames, 512), -EINVAL, "set_gdt with a writable frame gives -EINVAL");
    CHECK_EQ(HYPERVISOR_set_gdt(frames, FIRST_RESERVED_GDT_ENTRY + 1), -EINVAL, "set_gdt with too many entries gives -EINVAL");
    CHECK_EQ(gdt_install(), 0, "set_gdt with a read-only frame");

    CHECK_EQ(gdt_set(7, make_desc(0, 0xFFFFF, DESC_DATA_RW, 0, DESC_G_32)), 0, "update_descriptor DPL-0 data accepted");
    CHECK_EQ(DPL(gdt[7]), 1, "DPL 0 raised to DPL 1");
    CHECK_EQ(gdt_set(9, make_desc(0, 0, 0x05, 1, 0)), -EINVAL, "task gate rejected");
    CHECK_EQ(gdt_set(9, make_desc(0xFFC00000, 0xFF, DESC_DATA_RW, 1, DESC_G_32)), -EINVAL, "base above the guest segment limit rejected");
    CHECK_EQ(HYPERVISOR_update_descriptor(virt_to_machine(&gdt[9]) + 4, make_desc(0, 0xFFFFF, DESC_DATA_RW, 1, DESC_G_32)), -EINVAL,
             "misaligned machine address rejected");
    CHECK_EQ(gdt[9], 0, "rejected updates left the entry alone");

    /* A byte-granular data segment over buf, through ES. */
    CHECK_EQ(gdt_set(20, make_desc((uint32_t)buf, sizeof buf - 1, DESC_DATA_RW, 1, 0x4)), 0, "update_descriptor small data segment");
    uint32_t v;
    load_es(SEL(20, 1));
    asm volatile("movl %%es:4, %0" : "=r"(v));
    CHECK_EQ(v, buf[1], "read through a based GDT data segment");
    PROBE(13, "movl %%es:16, %%eax", : : : "eax");
    expect_trap("#GP(0) past the segment limit", 13, 0, probe_start);
    load_es(FLAT_KERNEL_DS);

    PROBE(13, "movw %%ax, %%fs", : : "a"(SEL(513, 1)));
    expect_trap("#GP(0x1008) for GDT page 1, not supplied", 13, 0x1008, probe_start);

    /* Far jump through a guest DPL-1 code descriptor and back. */
    CHECK_EQ(gdt_set(21, make_desc(0, 0xFFFFF, DESC_CODE_RX, 1, DESC_G_32)), 0, "update_descriptor code segment");
    uint32_t cs;
    asm volatile("ljmp %[sel], $1f\n1:\tmovl %%cs, %0\n\tljmp $0xE019, $2f\n2:" : "=r"(cs) : [sel] "i"(SEL(21, 1)));
    CHECK_EQ(cs & 0xFFFF, SEL(21, 1), "far jump through a guest code descriptor");

    /* LDT: descriptors written while the page is still writable, then RO + SET_LDT. */
    ldt[1] = make_desc((uint32_t)lbuf, 0xFFF, DESC_DATA_RW, 1, 0x4);
    CHECK_EQ(make_readonly(ldt), 0, "LDT page read-only");
    CHECK_EQ(mmuext(MMUEXT_SET_LDT, (uint32_t)ldt, 16), 0, "MMUEXT_SET_LDT (16 entries)");
    load_fs(LSEL(1, 1));
    CHECK_EQ(read_fs0(), lbuf[0], "read through an LDT selector");
    CHECK_EQ(HYPERVISOR_update_descriptor(virt_to_machine(&ldt[2]), make_desc((uint32_t)&lbuf[1], 0xFFF, DESC_DATA_RW, 1, 0x4)), 0,
             "update_descriptor on an LDT entry");
    load_fs(LSEL(2, 1));
    CHECK_EQ(read_fs0(), lbuf[1], "read through the updated LDT entry");
    load_fs(FLAT_KERNEL_DS);
    PROBE(13, "movw %%ax, %%fs", : : "a"(LSEL(20, 1)));
    expect_trap("#GP(0xa4) for a selector beyond the LDT size", 13, LSEL(20, 0), probe_start);
    CHECK_EQ(HYPERVISOR_update_va_mapping((uint32_t)ldt, make_pte(virt_to_mfn(ldt),
             _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY), UVMF_INVLPG), -EINVAL,
             "writable mapping of an LDT frame in use refused");

    /* TLS-style DPL-3 entries in GS, as Linux's GDT_ENTRY_TLS. */
    CHECK_EQ(gdt_set(6, make_desc((uint32_t)tls, 0xFFFFF, DESC_DATA_RW, 3, DESC_G_32)), 0, "TLS entry 6");
    CHECK_EQ(DPL(gdt[6]), 3, "TLS entry keeps DPL 3");
    load_gs(SEL(6, 3));
    CHECK_EQ(read_gs0(), tls[0], "read %gs:0 through TLS entry 6");
    CHECK_EQ(gdt_set(6, make_desc((uint32_t)&tls[2], 0xFFFFF, DESC_DATA_RW, 3, DESC_G_32)), 0, "TLS entry 6 rebased");
    load_gs(SEL(6, 3));
    CHECK_EQ(read_gs0(), tls[2], "reload GS sees the new base");
    load_gs(FLAT_KERNEL_DS);
}
