/* Ring-3 program for the syscalls guest: SYSENTER then SYSCALL, each with NT and AC
 * set, then int $0x80 back to the kernel (which may run it again). */
        .section .user.text, "ax"
        .globl sc_user, u_sysenter, u_back1, u_syscall, u_back2
sc_user:
        pushfl
        orl     $0x44000, (%esp)        /* NT | AC: the flags the frames must keep */
        popfl
        movl    $u_back1, %edx          /* where the kernel resumes after SYSENTER (Linux's convention) */
        movl    %esp, %ecx
u_sysenter:
        sysenter
u_back1:
        pushfl
        orl     $0x44000, (%esp)
        popfl
u_syscall:
        syscall
u_back2:
        int     $0x80
1:      jmp     1b
        .section .note.GNU-stack, "", @progbits
