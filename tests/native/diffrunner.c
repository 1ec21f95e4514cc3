/*
 * diffrunner: executes instruction snippets natively on the host CPU (32-bit user mode) for the
 * differential CPU tests in tests/Engine.Tests/Differential/. Freestanding: no libc, raw
 * int 0x80 system calls, so it builds with a plain `gcc -m32 -static` even where no 32-bit libc
 * (gcc-multilib) is installed.
 *
 * Build: gcc -m32 -static -O1 -nostdlib -ffreestanding -fno-pie -no-pie -fno-stack-protector \
 *            -fno-builtin -o diffrunner diffrunner.c
 *
 * Protocol (all little-endian; stdin is a stream of cases until EOF, stdout one result per case):
 *   case:   u32 magic 'DCAS' (0x53414344), u32 id,
 *           u32 gpr[8] (eax ecx edx ebx esp ebp esi edi), u32 eflags (only CF PF AF ZF SF OF DF
 *           are applied), u32 fillSeed, u32 guard (the page at GUARD_ADDR: 0 unmapped,
 *           1 read-only holding the fixed guard fill), u16 patchCount,
 *           { u16 offset, u16 len, bytes[len] }*, u16 codeLen, bytes[codeLen]
 *   result: u32 magic 'DRES' (0x53455244), u32 id, u32 signal (0 = ran to the end), u32 trapno,
 *           u32 err, u32 eip (fault/trap EIP from the signal context; 0 when completed),
 *           u32 cr2 (from the signal context), u32 gpr[8], u32 eflags,
 *           u16 sreg[6] (es cs ss ds fs gs), u16 changedCount, { u16 offset, u8 value }*
 *
 * Memory: the code page is mapped RWX at CODE_ADDR; the snippet is copied there followed by a
 * `jmp rel32` to exit_tramp. The data area is two pages at DATA_ADDR (data page, then the stack
 * page); both are filled with xorshift32(fillSeed) (see Fill below, mirrored in C#), then the
 * patches are applied. After the run the result lists every byte of the data area that differs
 * from the filled-and-patched image. Registers at a fault come from the signal context (the
 * kernel reports the state before a faulting instruction, after a trapping one). The page below
 * the data area is never mapped; the page above it (GUARD_ADDR) is unmapped or read-only as the
 * case asks, so stores, pushes and string operations can cross into either kind of faulting page.
 *
 * Segments: the snippet starts with the process's own selectors (CS 0x23, DS ES SS 0x2b, FS GS 0).
 * The LDT installed with modify_ldt (ldt_entries below, mirrored by LinuxSegments.cs) gives it
 * limited, read-only, expand-down, code, execute-only and not-present segments to load into
 * DS ES FS GS. The exit trampoline and the signal handler report the data selectors and put
 * the runner's own back before any runner code touches memory through them.
 */
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define CODE_ADDR 0x10000000u
#define DATA_ADDR 0x20000000u
#define DATA_SIZE 0x2000u
#define GUARD_ADDR (DATA_ADDR + DATA_SIZE)
#define GUARD_SEED 0x47554152u /* 'GUAR': the read-only guard page's fill, mirrored in C# */
#define MAGIC_CASE 0x53414344u
#define MAGIC_RES 0x53455244u

/* ---- system calls ---- */
static inline int sys3(int nr, u32 a, u32 b, u32 c)
{
    int r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return r;
}
static inline int sys4(int nr, u32 a, u32 b, u32 c, u32 d)
{
    int r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c), "S"(d) : "memory");
    return r;
}
#define SYS_exit 1
#define SYS_read 3
#define SYS_write 4
#define SYS_old_mmap 90
#define SYS_munmap 91
#define SYS_mprotect 125
#define SYS_modify_ldt 123
#define SYS_sigaltstack 186
#define SYS_rt_sigaction 174
#define SYS_rt_sigreturn 173

void *memcpy(void *d, const void *s, unsigned n) { u8 *dd = d; const u8 *ss = s; while (n--) *dd++ = *ss++; return d; }
void *memset(void *d, int v, unsigned n) { u8 *dd = d; while (n--) *dd++ = (u8)v; return d; }

static void die(const char *msg)
{
    unsigned n = 0;
    while (msg[n]) n++;
    sys3(SYS_write, 2, (u32)msg, n);
    sys3(SYS_exit, 2, 0, 0);
    for (;;) { }
}

/* ---- buffered I/O ---- */
static u8 inbuf[1 << 16];
static unsigned inpos, inlen;
static u8 outbuf[1 << 16];
static unsigned outlen;

static int fill_in(void)
{
    int r = sys3(SYS_read, 0, (u32)inbuf, sizeof inbuf);
    if (r < 0) die("diffrunner: read error\n");
    inpos = 0; inlen = (unsigned)r;
    return r > 0;
}

/* Reads n bytes; returns 0 at a clean EOF before the first byte when eof_ok. */
static int get(void *p, unsigned n, int eof_ok)
{
    u8 *d = p;
    while (n) {
        if (inpos == inlen && !fill_in()) {
            if (eof_ok) return 0;
            die("diffrunner: truncated case\n");
        }
        eof_ok = 0;
        unsigned k = inlen - inpos;
        if (k > n) k = n;
        memcpy(d, inbuf + inpos, k);
        inpos += k; d += k; n -= k;
    }
    return 1;
}

static void flush_out(void)
{
    unsigned off = 0;
    while (off < outlen) {
        int r = sys3(SYS_write, 1, (u32)(outbuf + off), outlen - off);
        if (r <= 0) die("diffrunner: write error\n");
        off += (unsigned)r;
    }
    outlen = 0;
}

static void put(const void *p, unsigned n)
{
    const u8 *s = p;
    while (n) {
        if (outlen == sizeof outbuf) flush_out();
        unsigned k = sizeof outbuf - outlen;
        if (k > n) k = n;
        memcpy(outbuf + outlen, s, k);
        outlen += k; s += k; n -= k;
    }
}
static void put32(u32 v) { put(&v, 4); }
static void put16(u16 v) { put(&v, 2); }

/* ---- the snippet's world ---- */
/* g_in is laid out for popad then popfd: edi esi ebp (esp) ebx edx ecx eax eflags. */
u32 g_in[9];
u32 g_in_esp;
u32 g_code_addr = CODE_ADDR;
u32 g_saved_esp;
/* pushfd then pushad below g_out_top: edi esi ebp esp ebx edx ecx eax eflags. */
u32 g_out[9];
u32 g_out_esp;
/* Data selectors at the end of a completed snippet (es cs ss ds fs gs), and the runner's own. */
u16 g_out_seg[6];
u16 g_runner_ds, g_runner_fs, g_runner_gs;

void run_snippet(void);
void exit_tramp(void);
void fault_resume(void);

__asm__(
    ".text\n"
    ".globl run_snippet\n"
    "run_snippet:\n"
    "  push %ebp\n push %ebx\n push %esi\n push %edi\n"
    "  mov %esp, g_saved_esp\n"
    "  mov $g_in, %esp\n"
    "  popa\n"
    "  popf\n"
    "  mov g_in_esp, %esp\n"
    "  jmp *g_code_addr\n"
    ".globl exit_tramp\n"
    "exit_tramp:\n"
    /* Only SS (never changed by a snippet) addresses memory until the runner's selectors are back. */
    "  mov %esp, %ss:g_out_esp\n"
    "  mov $g_out+36, %esp\n"
    "  pushf\n"
    "  pusha\n"
    "  mov %es, %ss:g_out_seg\n"
    "  mov %cs, %ss:g_out_seg+2\n"
    "  mov %ss, %ss:g_out_seg+4\n"
    "  mov %ds, %ss:g_out_seg+6\n"
    "  mov %fs, %ss:g_out_seg+8\n"
    "  mov %gs, %ss:g_out_seg+10\n"
    "  movzwl %ss:g_runner_ds, %eax\n"
    "  mov %eax, %ds\n"
    "  mov %eax, %es\n"
    "  movzwl g_runner_fs, %eax\n"
    "  mov %eax, %fs\n"
    "  movzwl g_runner_gs, %eax\n"
    "  mov %eax, %gs\n"
    "  mov g_saved_esp, %esp\n"
    "  cld\n"
    "  pop %edi\n pop %esi\n pop %ebx\n pop %ebp\n"
    "  ret\n"
    ".globl fault_resume\n"
    "fault_resume:\n"
    "  mov g_saved_esp, %esp\n"
    "  cld\n"
    "  pop %edi\n pop %esi\n pop %ebx\n pop %ebp\n"
    "  ret\n"
    ".globl sig_restorer\n"
    "sig_restorer:\n"
    "  mov $173, %eax\n"
    "  int $0x80\n");

void sig_restorer(void);

static volatile u32 f_sig, f_trapno, f_err, f_eip, f_cr2, f_regs[8], f_eflags, f_seg[6];

/* i386 ucontext: uc_flags, uc_link, uc_stack (12 bytes), then struct sigcontext:
 * gs fs es ds edi esi ebp esp ebx edx ecx eax trapno err eip cs eflags esp_at_signal ss
 * fpstate oldmask cr2. Selectors are 16 bits in 32-bit slots. */
static void on_signal(int sig, void *info, void *ucv)
{
    (void)info;
    u32 *sc = (u32 *)((u8 *)ucv + 20);
    f_sig = (u32)sig;
    f_trapno = sc[12];
    f_err = sc[13];
    f_eip = sc[14];
    f_regs[0] = sc[11]; f_regs[1] = sc[10]; f_regs[2] = sc[9]; f_regs[3] = sc[8];
    f_regs[4] = sc[7]; f_regs[5] = sc[6]; f_regs[6] = sc[5]; f_regs[7] = sc[4];
    f_eflags = sc[16];
    f_cr2 = sc[21];
    f_seg[0] = sc[2] & 0xFFFF; f_seg[1] = sc[15] & 0xFFFF; f_seg[2] = sc[18] & 0xFFFF;
    f_seg[3] = sc[3] & 0xFFFF; f_seg[4] = sc[1] & 0xFFFF; f_seg[5] = sc[0] & 0xFFFF;
    /* sigreturn reloads these: give the runner its own selectors back. */
    sc[3] = sc[2] = g_runner_ds;
    sc[1] = g_runner_fs;
    sc[0] = g_runner_gs;
    sc[14] = (u32)fault_resume;
    sc[16] &= ~0x500u; /* clear TF and DF for the runner */
}

struct ksigaction { void *handler; u32 flags; void *restorer; u32 mask[2]; };

static void install_handlers(void)
{
    static u8 altstack[65536];
    u32 ss[3] = { (u32)altstack, 0, sizeof altstack };
    if (sys3(SYS_sigaltstack, (u32)ss, 0, 0) != 0) die("diffrunner: sigaltstack failed\n");
    static const int sigs[] = { 4 /*ILL*/, 5 /*TRAP*/, 7 /*BUS*/, 8 /*FPE*/, 11 /*SEGV*/ };
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct ksigaction sa;
        sa.handler = (void *)on_signal;
        /* SA_SIGINFO | SA_ONSTACK | SA_RESTORER | SA_NODEFER */
        sa.flags = 4u | 0x08000000u | 0x04000000u | 0x40000000u;
        sa.restorer = (void *)sig_restorer;
        sa.mask[0] = sa.mask[1] = 0;
        if (sys4(SYS_rt_sigaction, (u32)sigs[i], (u32)&sa, 0, 8) != 0)
            die("diffrunner: rt_sigaction failed\n");
    }
}

static void map_fixed(u32 addr, u32 len, u32 prot)
{
    u32 args[6] = { addr, len, prot, 0x10u /*FIXED*/ | 0x02u /*PRIVATE*/ | 0x20u /*ANON*/, (u32)-1, 0 };
    int r = sys3(SYS_old_mmap, (u32)args, 0, 0);
    if ((u32)r != addr) die("diffrunner: mmap failed\n");
}

/* struct user_desc flags: seg_32bit(0) contents(1-2) read_exec_only(3) limit_in_pages(4) seg_not_present(5) useable(6). */
#define LDT_32 1u
#define LDT_EXPAND_DOWN (1u << 1)
#define LDT_CODE (2u << 1)
#define LDT_RO (1u << 3)
#define LDT_NOT_PRESENT (1u << 5)
/* entry, base, limit, flags; selector = entry * 8 + 7. Mirrored by LinuxSegments.Ldt in C#. */
static const u32 ldt_entries[][4] = {
    { 0, DATA_ADDR, 0x0FFF, LDT_32 },                   /* 0x07 data RW, the data page only */
    { 1, DATA_ADDR, 0x1FFF, LDT_32 | LDT_RO },          /* 0x0f data read-only */
    { 2, DATA_ADDR, 0x0FFF, LDT_32 | LDT_EXPAND_DOWN }, /* 0x17 expand-down: offsets 0x1000 and up */
    { 3, CODE_ADDR, 0x0FFF, LDT_32 | LDT_CODE },        /* 0x1f code, execute/read */
    { 4, CODE_ADDR, 0x0FFF, LDT_32 | LDT_CODE | LDT_RO }, /* 0x27 code, execute-only */
    { 5, DATA_ADDR, 0x1FFF, LDT_32 | LDT_NOT_PRESENT }, /* 0x2f not present */
    { 6, DATA_ADDR + 0x800, 0x07FF, 0 },                /* 0x37 16-bit data at data+0x800 */
};

static void install_ldt(void)
{
    for (unsigned i = 0; i < sizeof ldt_entries / sizeof ldt_entries[0]; i++) {
        u32 d[4] = { ldt_entries[i][0], ldt_entries[i][1], ldt_entries[i][2], ldt_entries[i][3] };
        if (sys3(SYS_modify_ldt, 1, (u32)d, 16) != 0) die("diffrunner: modify_ldt failed (the kernel must allow it)\n");
    }
}

/* The guard page above the data area: 0 unmapped, 1 read-only with the guard fill. */
static u32 guard_state;
static void fill_n(u8 *p, u32 seed, u32 n);
static void set_guard(u32 want)
{
    if (want == guard_state) return;
    if (want == 1) {
        map_fixed(GUARD_ADDR, 4096, 3);
        fill_n((u8 *)GUARD_ADDR, GUARD_SEED, 4096);
        if (sys3(SYS_mprotect, GUARD_ADDR, 4096, 1) != 0) die("diffrunner: mprotect failed\n");
    } else if (want == 0) {
        if (sys3(SYS_munmap, GUARD_ADDR, 4096, 0) != 0) die("diffrunner: munmap failed\n");
    } else die("diffrunner: bad guard kind\n");
    guard_state = want;
}

/* xorshift32 fill of the data area, 4 bytes per step; mirrored by DataArea.Fill in C#. */
static void fill_n(u8 *p, u32 seed, u32 n)
{
    u32 x = seed ? seed : 0x9E3779B9u;
    for (u32 i = 0; i < n; i += 4) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        p[i] = (u8)x; p[i + 1] = (u8)(x >> 8); p[i + 2] = (u8)(x >> 16); p[i + 3] = (u8)(x >> 24);
    }
}
static void fill(u8 *p, u32 seed) { fill_n(p, seed, DATA_SIZE); }

static u8 image[DATA_SIZE];
static u8 code[4096];

void _start_c(void)
{
    install_handlers();
    install_ldt();
    __asm__ volatile("mov %%ds, %0\n mov %%fs, %1\n mov %%gs, %2" : "=m"(g_runner_ds), "=m"(g_runner_fs), "=m"(g_runner_gs));
    map_fixed(CODE_ADDR, 4096, 7);
    map_fixed(DATA_ADDR, DATA_SIZE, 3);
    u8 *data = (u8 *)DATA_ADDR;
    for (;;) {
        u32 hdr[2];
        if (!get(hdr, 8, 1)) break;
        if (hdr[0] != MAGIC_CASE) die("diffrunner: bad case magic\n");
        u32 regs[8], eflags, seed;
        get(regs, 32, 0);
        get(&eflags, 4, 0);
        get(&seed, 4, 0);
        u32 guard;
        get(&guard, 4, 0);
        set_guard(guard);
        fill(image, seed);
        u16 npatch;
        get(&npatch, 2, 0);
        for (u32 i = 0; i < npatch; i++) {
            u16 po[2];
            get(po, 4, 0);
            if ((u32)po[0] + po[1] > DATA_SIZE) die("diffrunner: patch out of range\n");
            get(image + po[0], po[1], 0);
        }
        u16 clen;
        get(&clen, 2, 0);
        if (clen > 4096 - 5) die("diffrunner: code too long\n");
        get(code, clen, 0);
        /* Code page: int3 everywhere, the snippet, then jmp exit_tramp. */
        u8 *cp = (u8 *)CODE_ADDR;
        memset(cp, 0xCC, 4096);
        memcpy(cp, code, clen);
        cp[clen] = 0xE9;
        u32 rel = (u32)exit_tramp - (CODE_ADDR + clen + 5);
        memcpy(cp + clen + 1, &rel, 4);
        memcpy(data, image, DATA_SIZE);

        g_in[0] = regs[7]; g_in[1] = regs[6]; g_in[2] = regs[5]; g_in[3] = 0;
        g_in[4] = regs[3]; g_in[5] = regs[2]; g_in[6] = regs[1]; g_in[7] = regs[0];
        g_in[8] = (eflags & 0xCD5u) | 0x202u;
        g_in_esp = regs[4];
        f_sig = 0;
        run_snippet();

        put32(MAGIC_RES);
        put32(hdr[1]);
        if (f_sig) {
            put32(f_sig); put32(f_trapno); put32(f_err); put32(f_eip); put32(f_cr2);
            for (int i = 0; i < 8; i++) put32(f_regs[i]);
            put32(f_eflags);
            for (int i = 0; i < 6; i++) put16((u16)f_seg[i]);
        } else {
            put32(0); put32(0); put32(0); put32(0); put32(0);
            put32(g_out[7]); put32(g_out[6]); put32(g_out[5]); put32(g_out[4]);
            put32(g_out_esp); put32(g_out[2]); put32(g_out[1]); put32(g_out[0]);
            put32(g_out[8]);
            for (int i = 0; i < 6; i++) put16(g_out_seg[i]);
        }
        u16 changed = 0;
        for (u32 i = 0; i < DATA_SIZE; i++) if (data[i] != image[i]) changed++;
        put16(changed);
        for (u32 i = 0; i < DATA_SIZE; i++)
            if (data[i] != image[i]) { put16((u16)i); put(&data[i], 1); }
    }
    flush_out();
    sys3(SYS_exit, 0, 0, 0);
}

/* Entry: align the stack and call into C (no libc, no crt). */
__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n"
    "  and $-16, %esp\n"
    "  call _start_c\n"
    "  hlt\n");
