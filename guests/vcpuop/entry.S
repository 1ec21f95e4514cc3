/* First instruction of a secondary vCPU (VCPUOP_initialise user_regs): ESP is
 * its own stack, ESI its vCPU id. Nothing returns here. */
        .text
        .globl secondary_start
secondary_start:
        cld
        xorl    %ebp, %ebp
        pushl   %esi
        call    secondary_main
1:      jmp     1b

/* A secondary keeps its events masked; this callback is never entered. */
        .globl secondary_callback
secondary_callback:
        jmp     secondary_callback

        .section .note.GNU-stack, "", @progbits
