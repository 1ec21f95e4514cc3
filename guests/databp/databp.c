/* databp: DR7 data breakpoints set through set_debugreg (SDM vol. 3 §17.2.4-§17.2.5, §17.3.1.2):
 * a write breakpoint traps after the store (#DB trap, DR6.Bn, the store done), a read leaves a
 * write-only breakpoint alone, R/W 11 traps on reads, LEN masks the low address bits, a rep
 * string traps after the iteration that hit (ECX counts the rest), two breakpoints hit by one
 * access set both bits, and clearing DR7 stops it all. Then the MOV SS shadow holds event upcalls
 * back: timer upcalls land all over a loop that reloads SS, never on the instruction right after
 * the reload (SDM vol. 3 §6.8.3). Both builds (3.1 and 4.19 behave alike). */
#include "guest.h"

const char guest_name[] = "databp";

#define HC_set_debugreg 8
#define HC_get_debugreg 9
static long setdr(int r, uint32_t v) { return hypercall(HC_set_debugreg, r, v, 0, 0, 0); }
static long getdr(int r) { return hypercall(HC_get_debugreg, r, 0, 0, 0, 0); }

/* L(n) enables breakpoint n; RW/LEN fields per SDM table 17-2 (R/W 01 write, 11 read/write; LEN 00 1, 01 2, 11 4). */
#define L(n) (1u << ((n) * 2))
#define RW(n, v) ((uint32_t)(v) << (16 + (n) * 4))
#define LEN(n, v) ((uint32_t)(v) << (18 + (n) * 4))

static volatile uint32_t watched[4] __attribute__((aligned(16)));
static volatile uint8_t src[16], dst[16] __attribute__((aligned(16)));

#define SHADOW_TICKS 64
static volatile int shadow_ticks, after_movss_hits, in_loop_hits;
extern char movss_loop[], after_movss[], movss_loop_end[];
static void tick(unsigned port, struct regs *r)
{
    shadow_ticks++;
    if (r->eip == (uint32_t)after_movss) after_movss_hits++;
    if (r->eip >= (uint32_t)movss_loop && r->eip < (uint32_t)movss_loop_end) in_loop_hits++;
    /* A period that grows by one instruction each time lands the next upcall one place further on. */
    if (shadow_ticks < SHADOW_TICKS) HYPERVISOR_set_timer_op(system_time() + 5000 + shadow_ticks);
}
static struct regs *upcall(struct regs *r) { evtchn_scan(r); return r; }

static uint32_t dr6_bits(void) { return (uint32_t)getdr(6) & 0xF; }

void guest_main(void)
{
    map_shared_info();
    traps_init();
    set_handler(1, trap_expected);
    uint32_t v;

    setdr(0, (uint32_t)&watched[1]);
    setdr(6, 0);
    CHECK_EQ(setdr(7, L(0) | RW(0, 1) | LEN(0, 3)), 0, "DR7: DR0 write breakpoint, 4 bytes");
    PROBE(1, "movl $0x1234, (%0)", : : "r"(&watched[1]) : "memory");
    expect_trap("a store to the watched dword: #DB trap after it", 1, 0, probe_end);
    CHECK_EQ(dr6_bits(), 1u, "DR6.B0");
    CHECK_EQ(watched[1], 0x1234u, "the store completed before the trap");
    PROBE(-1, "movl (%1), %0", : "=r"(v) : "r"(&watched[1]));
    CHECK_EQ(last_trap.count, 0, "a read: no #DB from a write-only breakpoint");
    PROBE(-1, "movl $1, (%0)", : : "r"(&watched[2]) : "memory");
    CHECK_EQ(last_trap.count, 0, "a store beside the range: no #DB");

    setdr(1, (uint32_t)&watched[2] + 3);          /* LEN 2 ignores address bit 0: the range is bytes 2-3 */
    setdr(6, 0);
    CHECK_EQ(setdr(7, L(1) | RW(1, 3) | LEN(1, 1)), 0, "DR7: DR1 read/write breakpoint, 2 bytes");
    PROBE(1, "movb (%1), %b0", : "=q"(v) : "r"((uint32_t)&watched[2] + 2));
    expect_trap("a byte read inside the masked range: #DB", 1, 0, probe_end);
    CHECK_EQ(dr6_bits(), 2u, "DR6.B1");
    PROBE(-1, "movb (%1), %b0", : "=q"(v) : "r"((uint32_t)&watched[2] + 1));
    CHECK_EQ(last_trap.count, 0, "the byte below the range: no #DB");

    setdr(2, (uint32_t)&dst[5]);                  /* LEN 1, write */
    setdr(6, 0);
    setdr(7, L(2) | RW(2, 1));
    uint32_t left, edi, esi;
    for (int i = 0; i < 16; i++) src[i] = (uint8_t)(i + 1);
    PROBE(1, "rep movsb", : "=c"(left), "=D"(edi), "=S"(esi) : "0"(16), "1"(dst), "2"(src) : "memory");
    CHECKF(last_trap.count == 1 && last_trap.eip == probe_start, "rep movsb: #DB with EIP on the instruction",
           "count %d eip %x start %x", last_trap.count, last_trap.eip, probe_start);
    CHECKF(left == 10 && edi == (uint32_t)&dst[6] && dst[5] == 6 && dst[6] == 0,
           "rep movsb stops after the iteration that wrote the byte", "ecx %u edi %x", left, edi);
    CHECK_EQ(dr6_bits(), 4u, "DR6.B2");

    setdr(0, (uint32_t)&watched[3]);              /* two breakpoints on one dword, both read/write */
    setdr(3, (uint32_t)&watched[3] + 2);
    setdr(6, 0);
    setdr(7, L(0) | RW(0, 3) | LEN(0, 0) | L(3) | RW(3, 3) | LEN(3, 1));
    PROBE(1, "movl (%1), %0", : "=r"(v) : "r"(&watched[3]));
    expect_trap("one read, two breakpoints: one #DB", 1, 0, probe_end);
    CHECK_EQ(dr6_bits(), 9u, "DR6.B0 and B3");

    setdr(7, 0);
    PROBE(-1, "movl $2, (%0)", : : "r"(&watched[3]) : "memory");
    CHECK_EQ(last_trap.count, 0, "DR7 cleared: no #DB");

    set_handler(VEC_UPCALL, upcall);
    int tport = bind_virq(VIRQ_TIMER, 0);
    CHECKF(tport > 0, "bind_virq VIRQ_TIMER", "rc %d", tport);
    evtchn_set_handler(tport, tick);
    events_enable();
    HYPERVISOR_set_timer_op(system_time() + 5000);
    asm volatile("movw %%ss, %%ax\n"
                 ".globl movss_loop, after_movss, movss_loop_end\n"
                 "movss_loop:\tmovw %%ax, %%ss\n"
                 "after_movss:\tnop\n"
                 "\tcmpl %0, shadow_ticks\n"
                 "\tjb movss_loop\n"
                 "movss_loop_end:" : : "i"(SHADOW_TICKS) : "eax", "memory", "cc");
    events_disable();
    CHECKF(in_loop_hits >= SHADOW_TICKS / 2, "timer upcalls interrupted the MOV SS loop", "%d of %d", in_loop_hits, shadow_ticks);
    CHECK_EQ(after_movss_hits, 0, "no upcall lands on the instruction after MOV SS");
    all_pass();
}
