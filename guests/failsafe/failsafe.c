/* failsafe: Xen's return path fails and bounces to the failsafe callback with
 * the frame DS, ES, FS, GS, EIP, CS, EFLAGS (§8.4): (a) a stale GDT selector in
 * DS that cannot be reloaded, (b) a bad CS in a HYPERVISOR_iret frame. */
#include "guest.h"

const char guest_name[] = "failsafe";

static struct { int count; uint32_t segs[4], eip, cs, eflags, eax; } fs;

static struct regs *on_failsafe(struct regs *r)
{
    fs.count++;
    memcpy(fs.segs, failsafe_segs, sizeof fs.segs);
    fs.eip = r->eip; fs.cs = r->cs; fs.eflags = r->eflags; fs.eax = r->eax;
    r->cs = FLAT_KERNEL_CS;            /* recover: DS/ES were reloaded by the stub */
    return r;
}

static uint16_t read_ds(void) { uint16_t s; asm volatile("movw %%ds, %0" : "=r"(s)); return s; }
static uint16_t read_fs(void) { uint16_t s; asm volatile("movw %%fs, %0" : "=r"(s)); return s; }
static uint16_t read_gs(void) { uint16_t s; asm volatile("movw %%gs, %0" : "=r"(s)); return s; }

/* The frame word by word (DS ES FS GS EIP CS EFLAGS), each with its own check line, so a
 * layout mistake (two words swapped) names the word. */
static void check_frame(const char *name, const uint32_t segs[4], uint32_t eip, uint32_t cs, uint32_t eflags_mask, uint32_t eflags)
{
    static const char *const words[4] = { "ds", "es", "fs", "gs" };
    char check_name[160];
    snprintf(check_name, sizeof check_name, "%s: one callback", name);
    CHECKF(fs.count == 1, check_name, "%d failsafe callbacks, want 1", fs.count);
    for (int i = 0; i < 4; i++) {
        snprintf(check_name, sizeof check_name, "%s: word %d (%s)", name, i, words[i]);
        CHECKF(fs.segs[i] == segs[i], check_name, "0x%x, want 0x%x", fs.segs[i], segs[i]);
    }
    snprintf(check_name, sizeof check_name, "%s: word 4 (eip)", name);
    CHECKF(fs.eip == eip, check_name, "0x%08x, want 0x%08x", fs.eip, eip);
    snprintf(check_name, sizeof check_name, "%s: word 5 (cs)", name);
    CHECKF(fs.cs == cs, check_name, "0x%x, want 0x%x", fs.cs, cs);
    snprintf(check_name, sizeof check_name, "%s: word 6 (eflags)", name);
    CHECKF((fs.eflags & eflags_mask) == eflags, check_name, "0x%x, want &0x%x = 0x%x", fs.eflags, eflags_mask, eflags);
}

/* Distinct flat data selectors (GDT entries 11-13, RPL 1) for ES, FS and GS, so every
 * segment word of a failsafe frame has its own value. */
#define SEL_ES (11 * 8 + 1)
#define SEL_FS (12 * 8 + 1)
#define SEL_GS (13 * 8 + 1)

static void load_distinct_es_fs_gs(void)
{
    load_es(SEL_ES); load_fs(SEL_FS); load_gs(SEL_GS);
}

/* (b): push EFLAGS=0x46 (IF clear), the bad CS and EIP, and jump to the iret stub. */
static void bad_iret(uint32_t bad_cs)
{
    fs.count = 0;
    uint32_t eax = 0x5A5A5A5A;
    asm volatile("pushl $0x46\n\t"
                 "pushl %[cs]\n\t"
                 "pushl $1f\n\t"
                 "movl $1f, probe_end\n\t"
                 "jmp hypercall_page + 23 * 32\n"
                 "1:"
                 : "+a"(eax) : [cs] "r"(bad_cs) : "memory", "cc");
    load_es(FLAT_KERNEL_DS);
    load_fs(FLAT_KERNEL_DS);
    load_gs(FLAT_KERNEL_DS);
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(VEC_FAILSAFE, on_failsafe);
    struct callback_register cb = { CALLBACKTYPE_failsafe, CALLBACKF_mask_events, FLAT_KERNEL_CS, (uint32_t)failsafe_callback };
    CHECK_EQ(HYPERVISOR_callback_op(CALLBACKOP_register, &cb), 0, "callback_op register failsafe (mask events)");
    CHECK_EQ(gdt_install(), 0, "set_gdt");

    /* (a) DS holds GDT entry 10; making it not present means the hypercall's own
     * return cannot reload DS. EIP is the `ret` of stub 10 (page + 10*32 + 7). */
    const uint16_t sel = 10 * 8 + 1;
    CHECK_EQ(gdt_set(10, make_desc(0, 0xFFFFF, DESC_DATA_RW, 1, DESC_G_32)), 0, "update_descriptor flat data entry 10");
    for (unsigned i = 11; i <= 13; i++)
        CHECK_EQ(gdt_set(i, make_desc(0, 0xFFFFF, DESC_DATA_RW, 1, DESC_G_32)), 0, "update_descriptor flat data entries 11-13");
    load_distinct_es_fs_gs();
    load_ds(sel);
    CHECK_EQ(read_ds(), sel, "DS loaded from guest GDT entry 10");
    fs.count = 0;
    long rc = gdt_set(10, make_desc(0, 0xFFFFF, DESC_DATA_RW, 1, DESC_G_32) & ~(1ull << 47));
    uint16_t fs_after = read_fs(), gs_after = read_gs();
    load_fs(FLAT_KERNEL_DS); load_gs(FLAT_KERNEL_DS);
    CHECK_EQ(rc, 0, "update_descriptor result survives the failsafe bounce");
    load_es(FLAT_KERNEL_DS);
    const uint32_t segs_a[4] = { sel, SEL_ES, SEL_FS, SEL_GS };
    check_frame("failsafe frame for a stale DS", segs_a, (uint32_t)hypercall_page + HC_update_descriptor * 32 + 7,
                FLAT_KERNEL_CS | (1u << 16), 0x202, 0x002);
    CHECK_EQ(read_ds(), FLAT_KERNEL_DS, "DS good again after recovery");
    CHECKF(fs_after == 0 && gs_after == 0, "Xen loaded null FS/GS before the failsafe bounce", "fs 0x%x gs 0x%x", fs_after, gs_after);
    CHECK_EQ(vcpu0->evtchn_upcall_mask, 1, "events masked after the failsafe callback");

    /* (b) a bad CS: a data selector, then a null selector with RPL 1. */
    const uint32_t segs_b[4] = { FLAT_KERNEL_DS, SEL_ES, SEL_FS, SEL_GS };
    load_distinct_es_fs_gs();
    bad_iret(FLAT_KERNEL_DS);
    check_frame("failsafe frame for HYPERVISOR_iret to CS=0xe021 (data)", segs_b, probe_end, FLAT_KERNEL_DS | (1u << 16), ~0u, 0x46);
    CHECK_EQ(fs.eax, 0x5A5A5A5A, "EAX popped by HYPERVISOR_iret is in the failsafe context");
    load_distinct_es_fs_gs();
    bad_iret(0x0001);
    check_frame("failsafe frame for HYPERVISOR_iret to CS=0x0001 (null)", segs_b, probe_end, 0x0001 | (1u << 16), ~0u, 0x46);
    printf("continuing after two failsafe recoveries\n");
}
