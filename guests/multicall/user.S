/* Ring-3 code for the multicall guest: one trap to show where the kernel stack is. */
        .section .user.text, "ax"
        .globl mc_user
mc_user:
        int     $0x80
1:      jmp     1b
        .section .note.GNU-stack, "", @progbits
