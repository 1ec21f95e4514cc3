/* The guest kit library: console, checks, traps, events, page tables. */
#ifndef GUEST_H
#define GUEST_H
#include <stdarg.h>
#include "hypercall.h"

#ifdef CONFIG_PAE
typedef uint64_t pte_t;
#define PTE_ADDR_MASK 0x000FFFFFFFFFF000ull
#else
typedef uint32_t pte_t;
#define PTE_ADDR_MASK 0xFFFFF000u
#endif
#define PTRS_PER_PAGE (PAGE_SIZE / sizeof(pte_t))

/* ---- provided by each guest ---- */
extern const char guest_name[];
void guest_main(void);

/* ---- boot (head.S) ---- */
extern struct start_info *start_info;
extern char _text[], _end[], __user_start[], __user_end[];

/* ---- lib.c: console, formatting, checks, shutdown ---- */
int  vsnprintf(char *buf, int size, const char *fmt, va_list ap);
int  snprintf(char *buf, int size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_write(const char *s, int n);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int  memcmp(const void *a, const void *b, size_t n);
int  strcmp(const char *a, const char *b);
size_t strlen(const char *s);
void poweroff(void) __attribute__((noreturn));
void crash(void) __attribute__((noreturn));
void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void all_pass(void) __attribute__((noreturn));

/* CHECK(cond, name): one line "PASS <guest>: <name>" or "FAIL <guest>: <name> (details)". */
#define CHECK(cond, name)        check(!!(cond), name, "%s", #cond)
#define CHECKF(cond, name, ...)  check(!!(cond), name, __VA_ARGS__)
/* CHECK_EQ: compares two integers (as 64-bit) and reports both on failure. */
#define CHECK_EQ(got, want, name) do { long long g_ = (long long)(got), w_ = (long long)(want); \
        check(g_ == w_, name, "got %lld (0x%llx), want %lld (0x%llx)", g_, g_, w_, w_); } while (0)

/* ---- traps.c / entry.S ---- */
/* Frame built by the trap stubs (lowest address first). The bounce frame of
 * docs/xen-abi.md §8.2 starts at eip; esp/ss exist only for ring-3 frames. */
struct regs {
    uint32_t es, ds;
    uint32_t edi, esi, ebp, esp_unused, ebx, edx, ecx, eax;   /* pushal */
    uint32_t vector;   /* on return: 0 = HYPERVISOR_iret, 1 = real iret */
    uint32_t error;
    uint32_t eip, cs, eflags;
    uint32_t esp, ss;
};
#define VEC_UPCALL   256
#define VEC_FAILSAFE 257
#define NR_VECS      258
typedef struct regs *(*trap_fn)(struct regs *);

extern char trap_stubs[], hypervisor_callback[], failsafe_callback[];
extern uint32_t failsafe_segs[4];           /* DS, ES, FS, GS of the last failsafe frame */
#define trap_stub(v) ((void *)(trap_stubs + (v) * 16))

enum { IRET_HYPERCALL = 0, IRET_REAL = 1 };
extern int iret_mode;                  /* how trap_dispatch returns (default hypercall) */

/* The last trapped exception, recorded by the expect machinery. */
struct trap_record { int count; uint32_t vector, error, eip, cs, eflags, esp, ss, cr2; };
extern volatile struct trap_record last_trap;
extern volatile uint32_t trap_fixup;   /* if set, the next expected trap resumes here */
extern volatile int expected_vector;   /* -1: every trap is unexpected */

void traps_init(void);                 /* trap table (0-19), callbacks, ring-3 kernel stack */
void set_trap(unsigned vec, unsigned flags, trap_fn fn);  /* one trap_info entry + handler */
void set_handler(unsigned vec, trap_fn fn);               /* handler only (upcall, failsafe) */
struct regs *trap_dispatch(struct regs *r);
struct regs *trap_expected(struct regs *r);               /* default handler: record + fixup */
void resume_frame(struct regs *r) __attribute__((noreturn)); /* return through the stub path */
extern uint8_t trap_stack[];           /* kernel stack for traps from ring 3 */
#define TRAP_STACK_TOP ((uint32_t)(trap_stack + 2 * PAGE_SIZE))

/* Run ring-3 code at eip with stack esp; returns the value passed to leave_user. */
int  enter_user(uint32_t eip, uint32_t esp);
void leave_user(int value) __attribute__((noreturn));

/* Run an instruction sequence expecting trap vec (-1: none). probe_start is
 * the first instruction, probe_end the address after the sequence; the
 * expected trap resumes at probe_end. With operands (": :" at least), write
 * registers as %%reg. */
extern volatile uint32_t probe_start, probe_end;
#define PROBE(vec, insns, ...) do { expected_vector = (vec); last_trap.count = 0; barrier(); \
        asm volatile("movl $2f, probe_start\n\tmovl $1f, probe_end\n\tmovl $1f, trap_fixup\n" \
                     "2:\t" insns "\n1:" __VA_ARGS__); \
        barrier(); expected_vector = -1; trap_fixup = 0; } while (0)
/* One check line: exactly one trap with this vector, error code and EIP, from ring 1. */
void expect_trap(const char *name, int vec, uint32_t err, uint32_t eip);

/* ---- events.c ---- */
extern struct shared_info *HYPERVISOR_shared_info;
#define vcpu0 (&HYPERVISOR_shared_info->vcpu_info[0])
void map_shared_info(void);
typedef void (*evtchn_fn)(unsigned port, struct regs *r);
void evtchn_set_handler(unsigned port, evtchn_fn fn);
void evtchn_scan(struct regs *r);      /* two-level scan, as Linux does */
int  bind_virq(unsigned virq, unsigned vcpu);
int  bind_ipi(unsigned vcpu);
long evtchn_send(unsigned port);
long evtchn_close(unsigned port);
long evtchn_unmask_hc(unsigned port);
void mask_evtchn(unsigned port);
void unmask_evtchn(unsigned port);     /* local unmask + re-check (Linux style) */
void events_enable(void);              /* upcall_mask = 0, force delivery if pending */
void events_disable(void);
uint64_t system_time(void);            /* ns, from vcpu_time_info (§9) */
void block(void);
static inline int test_bit(unsigned n, volatile uint32_t *a) { return (a[n / 32] >> (n % 32)) & 1; }

/* ---- mm.c ---- */
extern uint32_t *p2m;                  /* start_info->mfn_list */
#define M2P ((volatile uint32_t *)M2P_VIRT_START)
static inline uint32_t pfn_to_mfn(uint32_t pfn) { return p2m[pfn]; }
static inline uint32_t mfn_to_pfn(uint32_t mfn) { return M2P[mfn]; }
static inline uint32_t virt_to_mfn(const void *va) { return p2m[((uint32_t)va - VIRT_BASE) >> PAGE_SHIFT]; }
static inline uint64_t virt_to_machine(const void *va)
{ return ((uint64_t)virt_to_mfn(va) << PAGE_SHIFT) | ((uint32_t)va & (PAGE_SIZE - 1)); }
static inline void *mfn_to_virt(uint32_t mfn) { return (void *)(VIRT_BASE + (mfn_to_pfn(mfn) << PAGE_SHIFT)); }
static inline pte_t make_pte(uint32_t mfn, uint32_t flags) { return ((pte_t)mfn << PAGE_SHIFT) | flags; }
static inline uint32_t pte_mfn(pte_t p) { return (uint32_t)((p & PTE_ADDR_MASK) >> PAGE_SHIFT); }

void *alloc_page(void);                /* zeroed page from a bss pool, mapped RW */
pte_t *lookup_pte(pte_t *root, uint32_t va);   /* VA of the L1 entry for va, or 0 */
extern pte_t *cur_root;                /* VA of the current top-level table */
long make_readonly(void *va);
long make_writable(void *va);
long mmuext(uint32_t cmd, uint32_t arg1, uint32_t arg2);
long mmu_update1(uint64_t ptr, uint64_t val);
/* An address space cloned from the current one (the seed's method): a new top
 * table (and, on PAE, a private copy of the L3-slot-3 L2), plus an optional
 * L1 for user mappings below 1 GB. */
struct aspace { pte_t *root; pte_t *pae_l2[4]; pte_t *l1_user; uint32_t user_base; };
void aspace_clone(struct aspace *as);
void aspace_map(struct aspace *as, uint32_t va, uint32_t mfn, uint32_t flags); /* before seal */
long aspace_seal(struct aspace *as);   /* make all tables RO and pin the root */
long aspace_switch(struct aspace *as); /* NEW_BASEPTR */
#define USER_BASE 0x40000000u           /* user mappings live in [USER_BASE, USER_BASE+2MB) */
void map_user_text(void);              /* give the .user section pages the U bit */

/* ---- descriptors (desc.c) ---- */
extern uint64_t gdt[512];              /* the guest GDT page */
long gdt_install(void);                /* make RO + set_gdt (512 entries) */
long gdt_set(unsigned idx, uint64_t desc);  /* update_descriptor on gdt[idx] */
uint64_t make_desc(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, unsigned flags_g);
#define DESC_DATA_RW 0x12                /* S=1 type 2 */
#define DESC_CODE_RX 0x1A                /* S=1 type A */
#define DESC_G_32    0xC                 /* G=1, D/B=1 */
static inline void load_ds(uint16_t s) { asm volatile("movw %0, %%ds" :: "r"(s) : "memory"); }
static inline void load_es(uint16_t s) { asm volatile("movw %0, %%es" :: "r"(s) : "memory"); }
static inline void load_fs(uint16_t s) { asm volatile("movw %0, %%fs" :: "r"(s) : "memory"); }
static inline void load_gs(uint16_t s) { asm volatile("movw %0, %%gs" :: "r"(s) : "memory"); }

#define barrier() asm volatile("" ::: "memory")
#endif
