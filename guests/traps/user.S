/* Ring-3 program for the traps guest. Runs at its link address in a page
 * given the U bit; each labelled instruction is one step of traps.c's table. */
        .section .user.text, "ax"
        .globl user_prog
        .globl u_int80a, u_int80b, u_int81, u_int41, u_int82, u_pf, u_int3, u_ds, u_exit
        .globl u_end80a, u_end80b, u_end81, u_end41, u_end82, u_endpf, u_end3, u_endds
user_prog:
        movl    $0x11111111, %ebx
u_int80a: int   $0x80          /* 0: DPL-3 gate, returns by real iret */
u_end80a:
u_int80b: int   $0x80          /* 1: returns by HYPERVISOR_iret */
u_end80b:
u_int81: int    $0x81          /* 2: DPL-3 gate with events masked */
u_end81:
u_int41: int    $0x41          /* 3: DPL-1 gate -> #GP(0x41*8+2) */
u_end41:
u_int82: int    $0x82          /* 4: Xen's hypercall gate is DPL 1 -> #GP(0x412) */
u_end82:
u_pf:   movl    0xC0100000, %eax   /* 5: supervisor page -> #PF(P|U) */
u_endpf:
u_int3: int3                   /* 6: #BP reaches the guest from ring 3 */
u_end3:
        movl    $0xE021, %eax
u_ds:   movw    %ax, %ds       /* 7: DPL-1 selector at CPL 3 -> #GP(0xE020) */
u_endds:
u_exit: int     $0x80          /* 8: exit back to the kernel */
1:      jmp     1b

        .section .note.GNU-stack, "", @progbits
