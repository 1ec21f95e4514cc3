/* Ring-3 program for the interfaces guest: cli and in under the virtual IOPL, then back. */
        .section .user.text, "ax"
        .globl io_user, u_cli, u_in
io_user:
u_cli:  cli
u_in:   inb     $0x80, %al
        int     $0x80
1:      jmp     1b
        .section .note.GNU-stack, "", @progbits
