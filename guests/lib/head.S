/* Boot: ELF notes for the Xen 3.1 loader (docs/xen-abi.md §6), the hypercall page
 * and the entry point (§7: ESI = start_info, ESP = top of the boot stack). */

#define NOTE(type, desc_kind, desc...)          \
        .pushsection .note.Xen, "a", @note;     \
        .balign 4;                              \
        .long 4, 2f - 1f, type;                 \
        .asciz "Xen";                           \
1:      desc_kind desc;                         \
2:      .balign 4;                              \
        .popsection

        NOTE(6,  .asciz, "replayvisor-guest")          /* GUEST_OS */
        NOTE(7,  .asciz, "1.0")                        /* GUEST_VERSION */
        NOTE(5,  .asciz, "xen-3.0")                    /* XEN_VERSION */
        NOTE(8,  .asciz, "generic")                    /* LOADER */
        NOTE(3,  .long,  0xC0000000)                   /* VIRT_BASE */
        NOTE(1,  .long,  _start)                       /* ENTRY */
        NOTE(2,  .long,  hypercall_page)               /* HYPERCALL_PAGE */
        NOTE(10, .asciz, "!writable_page_tables|pae_pgdir_above_4gb") /* FEATURES */
#ifdef CONFIG_PAE
        NOTE(9,  .asciz, "yes")                        /* PAE_MODE */
#else
        NOTE(9,  .asciz, "no")
#endif

        .section .text.head, "ax"
        .globl _start
_start:
        cld
        movl    %esi, %edx                /* keep start_info across the bss clear */
        movl    $__bss_start, %edi
        movl    $__bss_end, %ecx
        subl    %edi, %ecx
        shrl    $2, %ecx
        xorl    %eax, %eax
        rep stosl
        movl    %edx, start_info
        movl    $boot_stack + 16384, %esp
        xorl    %ebp, %ebp
        call    lib_main
1:      jmp     1b

/* Xen fills this page with 32-byte stubs before entry; it lives in .text so
 * the bss clear above never touches it. */
        .section .text.hypercall_page, "ax"
        .balign 4096
        .globl hypercall_page
hypercall_page:
        .fill 4096, 1, 0xCC

        .data
        .balign 4
        .globl start_info
start_info:
        .long 0

        .bss
        .balign 4096
boot_stack:
        .fill 16384, 1, 0

        .section .note.GNU-stack, "", @progbits
