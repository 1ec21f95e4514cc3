/* debugregs: set_debugreg/get_debugreg and the emulated mov to/from DRn with Xen's checks,
 * an instruction breakpoint (#DB fault, DR6.B0, RF to step over it), TF single-step and the
 * MOV SS shadow, and on 4.19 (the PAE build) CR4.DE with an I/O breakpoint on an emulated in.
 * The non-PAE build checks Xen 3.1's answers. */
#include "guest.h"

const char guest_name[] = "debugregs";

#define HC_set_debugreg 8
#define HC_get_debugreg 9
#define CR4_DE 8u
static int xen4;
#define BY(v419, v31) (xen4 ? (v419) : (v31))

static long setdr(int r, uint32_t v) { return hypercall(HC_set_debugreg, r, v, 0, 0, 0); }
static long getdr(int r) { return hypercall(HC_get_debugreg, r, 0, 0, 0, 0); }

static volatile int bp_hits;
static volatile uint32_t bp_eip, bp_dr6;
static struct regs *on_db_rf(struct regs *r)
{
    bp_hits++; bp_eip = r->eip; bp_dr6 = getdr(6);
    r->eflags |= 0x10000;                    /* RF: execute the instruction despite the breakpoint */
    return r;
}

extern char bp_insn[];
void bp_func(void);
asm(".text\n.globl bp_func, bp_insn\nbp_func:\nbp_insn: nop\n\tret\n");

static struct regs *on_db_off(struct regs *r)
{
    bp_hits++; bp_eip = r->eip; bp_dr6 = getdr(6);
    setdr(7, 0);
    return r;
}

void guest_main(void)
{
    map_shared_info();
    traps_init();
    xen4 = HYPERVISOR_xen_version(XENVER_version, 0) >= 0x00040000;

    CHECK_EQ((uint32_t)getdr(6), BY(0xFFFF0FF0u, 0u), "DR6 starts at its reset value (3.1: 0)");
    CHECK_EQ((uint32_t)getdr(7), BY(0x400u, 0u), "DR7 starts at its reset value (3.1: 0)");
    CHECK_EQ(setdr(0, 0xC0100000), 0, "set_debugreg DR0");
    CHECK_EQ((uint32_t)getdr(0), 0xC0100000u, "get_debugreg DR0");
    CHECK_EQ(setdr(1, HV_VIRT_START), BY(0, -EPERM), "DR1 in Xen's area: -EPERM on 3.1, any address on 4.19");
    CHECK_EQ(setdr(7, 0), 0, "DR7 = 0");
    CHECK_EQ((uint32_t)getdr(7), BY(0x400u, 0u), "DR7 reads 0x400 (4.19 always sets bit 10)");
    CHECK_EQ(setdr(7, 1u << 13), -EPERM, "DR7.GD: -EPERM");
    CHECK_EQ(setdr(6, 0), 0, "DR6 = 0");
    CHECK_EQ((uint32_t)getdr(6), 0xFFFF0FF0u, "DR6 keeps its fixed ones");
    CHECK_EQ(setdr(8, 0), BY(-ENODEV, -EINVAL), "set_debugreg 8: -ENODEV (3.1: -EINVAL)");
    CHECK_EQ(getdr(8), BY(-ENODEV, -EINVAL), "get_debugreg 8: -ENODEV (3.1: -EINVAL)");
    CHECK_EQ(setdr(7, 1 | (2u << 16)), -EPERM, "an I/O breakpoint without CR4.DE: -EPERM");

    uint32_t got = 0;
    asm volatile("movl %1, %%dr2\n\tmovl %%dr2, %0" : "=r"(got) : "r"(0xC0123456u));
    CHECK_EQ(got, 0xC0123456u, "emulated mov to and from DR2");

    /* Instruction breakpoint on bp_insn: a fault, EIP at the instruction, DR6.B0. The first
     * handler disables the breakpoint and returns (the instruction then runs); the second keeps
     * it and sets RF in the frame, so each call hits exactly once. */
    setdr(0, (uint32_t)bp_insn);
    setdr(6, 0);
    CHECK_EQ(setdr(7, 1), 0, "DR7 L0, execute breakpoint");
    set_handler(1, on_db_off);
    bp_hits = 0;
    bp_func();
    CHECKF(bp_hits == 1 && bp_eip == (uint32_t)bp_insn && (bp_dr6 & 0x400F) == 1,
           "instruction breakpoint: #DB fault at the instruction, DR6.B0 (not BS)", "hits %d eip %x dr6 %x", bp_hits, bp_eip, bp_dr6);
    setdr(6, 0);
    setdr(7, 1);
    set_handler(1, on_db_rf);
    bp_hits = 0;
    bp_func();
    bp_func();
    CHECKF(bp_hits == 2 && bp_eip == (uint32_t)bp_insn && (bp_dr6 & 1), "RF steps over the breakpoint; each pass hits once",
           "hits %d eip %x dr6 %x", bp_hits, bp_eip, bp_dr6);
    set_handler(1, trap_expected);
    setdr(7, 0);

    /* TF: the trap after MOV SS is held back until the next instruction has run. */
    setdr(6, 0);
    PROBE(1, "movw %%ss, %%ax\n\tpushfl\n\torl $0x100, (%%esp)\n\tpopfl\n\tmovw %%ax, %%ss\n\tnop\n3:\tnop", : : : "eax");
    uint32_t after_nop;
    asm volatile("movl $3b, %0" : "=r"(after_nop));
    expect_trap("single-step after MOV SS: #DB after the next instruction", 1, 0, after_nop);
    CHECKF((uint32_t)getdr(6) & 0x4000, "DR6.BS after single-step", "dr6 %lx", getdr(6));

    if (!xen4) {
        uint32_t cr4;
        asm volatile("movl %%cr4, %0" : "=r"(cr4));
        PROBE(13, "movl %0, %%cr4", : : "r"(cr4 | CR4_DE));
        expect_trap("3.1: CR4.DE cannot be set (#GP)", 13, 0, probe_start);
        all_pass();
    }
    uint32_t cr4;
    asm volatile("movl %%cr4, %0\n\torl $8, %0\n\tmovl %0, %%cr4\n\tmovl %%cr4, %0" : "=r"(cr4));
    CHECK(cr4 & CR4_DE, "4.19: the guest sets CR4.DE");
    PROBE(6, "movl %%dr4, %%eax", : : : "eax");
    expect_trap("mov from DR4 with CR4.DE: #UD", 6, 0, probe_start);
    CHECK_EQ(getdr(5), -ENODEV, "get_debugreg 5 with CR4.DE: -ENODEV");
    /* An I/O breakpoint on port 0x80 (LEN 1): Xen emulates it; the #DB comes after the in. */
    uint32_t iopl = 1;
    hypercall(33, 6, (long)&iopl, 0, 0, 0);
    setdr(0, 0x80); setdr(6, 0);
    CHECK_EQ(setdr(7, 1 | (2u << 16)), 0, "an I/O breakpoint with CR4.DE");
    CHECK_EQ((uint32_t)getdr(7), 0x20401u, "get_debugreg 7 shows it (hardware DR7 | emulated enables)");
    PROBE(1, "inb $0x80, %%al", : : : "eax");
    expect_trap("in from the watched port: #DB after the instruction", 1, 0, probe_end);
    CHECK_EQ((uint32_t)getdr(6) & 0xF, 1u, "DR6.B0 for the I/O breakpoint");
    PROBE(-1, "inb $0x81, %%al", : : : "eax");
    CHECK_EQ(last_trap.count, 0, "another port: no #DB");
    /* LEN 4 at 0x84 in DR1 (check_guest_io_breakpoint takes the address as it is): ports 0x84-0x87. */
    setdr(1, 0x84); setdr(6, 0);
    CHECK_EQ(setdr(7, 4 | (0xEu << 20)), 0, "a 4-byte I/O breakpoint in DR1");
    PROBE(1, "inb $0x87, %%al", : : : "eax");
    expect_trap("in from the last port of a 4-byte I/O breakpoint: #DB", 1, 0, probe_end);
    CHECK_EQ((uint32_t)getdr(6) & 0xF, 2u, "DR6.B1 for it");
    PROBE(-1, "inb $0x88, %%al", : : : "eax");
    CHECK_EQ(last_trap.count, 0, "the port after it: no #DB");
    setdr(6, 0);
    PROBE(1, "movw $0x83, %%dx\n\toutw %%ax, %%dx", : : : "edx");
    expect_trap("a 2-byte out through DX overlapping its first port: #DB", 1, 0, probe_end);
    CHECK_EQ((uint32_t)getdr(6) & 0xF, 2u, "DR6.B1 for the out");
    setdr(7, 0);
    setdr(6, 0);
    PROBE(-1, "inb $0x84, %%al", : : : "eax");
    CHECK_EQ(last_trap.count, 0, "DR7 cleared: no #DB");
    all_pass();
}
