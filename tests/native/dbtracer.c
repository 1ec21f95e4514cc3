/* dbtracer: runs instruction snippets under hardware data breakpoints on the host CPU, for the
 * differential data-breakpoint tests (tests/Engine.Tests/Differential/DataBreakpointDiffTests.cs).
 * A 64-bit program (user mode cannot write DR7; a tracer can, through PTRACE_POKEUSER on its child).
 * The child maps a code page at 0x40000 and two data pages at 0x80000 (below 4 GiB, so 32-bit
 * addresses mean the same in both modes), stops itself, and the parent runs each case in it:
 * it writes the snippet (which ends in int3), DR0-DR3, DR7 and the registers, continues the child
 * and reports where it stopped. Snippets use only encodings that mean the same in 32-bit and
 * 64-bit code (no REX range, no push/pop).
 *
 * stdin, one case per line (hex): DR0 DR1 DR2 DR3 DR7 EBX ECX ESI EDI DATA_FILL CODE_BYTES
 * stdout, one line per case (hex): STOP DR6 RIP-0x40000 ECX ESI EDI
 *   STOP: 1 = #DB (SIGTRAP with DR6 B0-B3), 0 = reached the final int3, 2 = anything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>

#define CODE 0x40000ul
#define DATA 0x80000ul

static void poke_dr(pid_t p, int i, unsigned long v)
{
    if (ptrace(PTRACE_POKEUSER, p, offsetof(struct user, u_debugreg[i]), (void *)v) != 0) {
        fprintf(stderr, "dbtracer: PTRACE_POKEUSER DR%d = %#lx refused\n", i, v);
        exit(2);
    }
}

int main(void)
{
    pid_t p = fork();
    if (p == 0) {
        if (mmap((void *)CODE, 0x1000, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ||
            mmap((void *)DATA, 0x2000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
            _exit(3);
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        _exit(4);
    }
    int st;
    if (waitpid(p, &st, 0) != p || !WIFSTOPPED(st)) { fprintf(stderr, "dbtracer: child did not stop\n"); return 2; }
    struct user_regs_struct base;
    ptrace(PTRACE_GETREGS, p, 0, &base);
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        unsigned long dr[4], dr7, ebx, ecx, esi, edi, fill;
        char code[2048];
        if (sscanf(line, "%lx %lx %lx %lx %lx %lx %lx %lx %lx %lx %2047s", &dr[0], &dr[1], &dr[2], &dr[3], &dr7,
                   &ebx, &ecx, &esi, &edi, &fill, code) != 11) { fprintf(stderr, "dbtracer: bad case line\n"); return 2; }
        poke_dr(p, 7, 0);
        for (unsigned long a = DATA; a < DATA + 0x2000; a += sizeof(long))
            ptrace(PTRACE_POKEDATA, p, (void *)a, (void *)(fill * 0x0101010101010101ul));
        unsigned char bytes[1024 + 8];
        size_t n = strlen(code) / 2;
        memset(bytes, 0xCC, sizeof bytes);
        for (size_t i = 0; i < n && i < 1024; i++) sscanf(code + 2 * i, "%2hhx", &bytes[i]);
        bytes[n] = 0xCC;
        for (size_t i = 0; i <= n; i += sizeof(long)) {
            long w;
            memcpy(&w, bytes + i, sizeof w);
            ptrace(PTRACE_POKETEXT, p, (void *)(CODE + i), (void *)w);
        }
        for (int i = 0; i < 4; i++) poke_dr(p, i, dr[i]);
        poke_dr(p, 6, 0);
        poke_dr(p, 7, dr7);
        struct user_regs_struct r = base;
        r.rip = CODE; r.rbx = ebx; r.rcx = ecx; r.rsi = esi; r.rdi = edi; r.rax = 0x11223344;
        r.eflags = 0x202;
        ptrace(PTRACE_SETREGS, p, 0, &r);
        ptrace(PTRACE_CONT, p, 0, 0);
        if (waitpid(p, &st, 0) != p || !WIFSTOPPED(st)) { fprintf(stderr, "dbtracer: child ended\n"); return 2; }
        ptrace(PTRACE_GETREGS, p, 0, &r);
        unsigned long dr6 = ptrace(PTRACE_PEEKUSER, p, offsetof(struct user, u_debugreg[6]), 0);
        int stop = WSTOPSIG(st) != SIGTRAP ? 2 : (dr6 & 0xF) ? 1 : r.rip == CODE + n + 1 ? 0 : 2;
        printf("%d %lx %lx %lx %lx %lx\n", stop, dr6 & 0xF, (unsigned long)(r.rip - CODE), (unsigned long)r.rcx & 0xFFFFFFFF,
               (unsigned long)r.rsi & 0xFFFFFFFF, (unsigned long)r.rdi & 0xFFFFFFFF);
        fflush(stdout);
    }
    kill(p, SIGKILL);
    waitpid(p, &st, 0);
    return 0;
}
