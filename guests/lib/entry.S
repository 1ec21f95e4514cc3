/* Trap, upcall and failsafe entry stubs and the common return path.
 * Bounce frames: docs/xen-abi.md §8.2. Frame layout: struct regs in guest.h. */

#define KERNEL_DS 0xE021

/* One 16-byte stub per vector. Xen pushes an error code for 8, 10-14, 17 (§8.3). */
        .text
        .balign 16
        .globl trap_stubs
trap_stubs:
        .set vec, 0
        .rept 256
        .balign 16
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17)
        .else
        pushl   $0
        .endif
        pushl   $vec
        jmp     trap_common
        .set vec, vec + 1
        .endr

/* Event upcall: a plain frame, no error code (§8.3). */
        .globl hypervisor_callback
hypervisor_callback:
        pushl   $0
        pushl   $256
        jmp     trap_common

/* Failsafe: frame = DS, ES, FS, GS, EIP, CS, EFLAGS[, ESP, SS] and Xen has
 * loaded null selectors (§8.4). Load a good DS (SS still works), copy the four
 * selectors to failsafe_segs, drop them and continue as vector 257. */
        .globl failsafe_callback
failsafe_callback:
        pushl   %eax
        movl    $KERNEL_DS, %eax
        movw    %ax, %ds
        movw    %ax, %es
        movl    4(%esp), %eax
        movl    %eax, failsafe_segs
        movl    8(%esp), %eax
        movl    %eax, failsafe_segs + 4
        movl    12(%esp), %eax
        movl    %eax, failsafe_segs + 8
        movl    16(%esp), %eax
        movl    %eax, failsafe_segs + 12
        popl    %eax
        leal    16(%esp), %esp
        pushl   $0
        pushl   $257
        jmp     trap_common

trap_common:
        pushal
        pushl   %ds
        pushl   %es
        movl    $KERNEL_DS, %eax
        movw    %ax, %ds
        movw    %ax, %es
        cld
        pushl   %esp
        call    trap_dispatch          /* returns the frame to resume */
        movl    %eax, %esp
        .globl trap_return
trap_return:
        popl    %es
        popl    %ds
        popal
        cmpl    $0, (%esp)             /* vector slot: 0 = HYPERVISOR_iret */
        leal    8(%esp), %esp          /* drop vector and error code, keep flags */
        jne     1f
        jmp     hypercall_page + 23 * 32   /* stub pushes EAX; frame EIP,CS,EFLAGS[,ESP,SS] */
1:      iret                           /* real iret: does not restore the upcall mask */

        .globl resume_frame
resume_frame:
        movl    4(%esp), %esp
        jmp     trap_return

/* int enter_user(eip, esp): iret to ring 3; leave_user(v) comes back here. */
        .globl enter_user
enter_user:
        pushl   %ebp
        pushl   %ebx
        pushl   %esi
        pushl   %edi
        movl    %esp, user_saved_esp
        movl    20(%esp), %eax         /* eip */
        movl    24(%esp), %ecx         /* esp */
        pushl   $0xE033                /* SS */
        pushl   %ecx                   /* ESP */
        pushl   $0x202                 /* EFLAGS */
        pushl   $0xE02B                /* CS */
        pushl   %eax                   /* EIP */
        movl    $0xE033, %eax
        movw    %ax, %ds
        movw    %ax, %es
        xorl    %eax, %eax
        iret

        .globl leave_user
leave_user:
        movl    4(%esp), %eax
        movl    user_saved_esp, %esp
        movl    $KERNEL_DS, %ecx
        movw    %cx, %ds
        movw    %cx, %es
        movw    %cx, %fs
        movw    %cx, %gs
        popl    %edi
        popl    %esi
        popl    %ebx
        popl    %ebp
        ret

        .bss
        .balign 4
user_saved_esp:
        .long 0
        .globl failsafe_segs
failsafe_segs:
        .fill 4, 4, 0

        .section .note.GNU-stack, "", @progbits
