/* A 32-bit PVH test kernel: an ELF32 image whose only entry is the Xen PHYS32_ENTRY note
 * (the PVH boot ABI, xen/include/public/arch-x86/hvm/start_info.h). Prints the
 * hvm_start_info it gets in EBX on COM1 and exits through isa-debug-exit with status
 * (0x11 << 1) | 1 = 35. */
#include "common.S"
        .section .note.Xen, "a", @note
        .align  4
        .long   4               /* namesz */
        .long   4               /* descsz */
        .long   18              /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz  "Xen"
        .align  4
        .long   pvh_start
        .align  4

        .section .text.head, "ax"
        .code32
        .globl  _start
_start:                         /* e_entry: never used by a PVH loader; fail loudly if it is */
        movb    $0x12, %al
        jmp     exit
pvh_start:
        movl    $stack_top, %esp
        movl    %ebx, %ebp
        PRINT   "PVH magic="
        movl    (%ebp), %eax
        call    puthex
        PRINT   " version="
        movl    4(%ebp), %eax
        call    puthex
        NL
        PRINT   "PVH cmdline=["
        movl    24(%ebp), %esi
        call    puts
        PRINT   "]"
        NL
        PRINT   "PVH nr_modules="
        movl    12(%ebp), %eax
        call    puthex
        NL
        cmpl    $0, 12(%ebp)
        je      1f
        movl    16(%ebp), %ebx          /* hvm_modlist_entry: paddr, size, cmdline_paddr */
        PRINT   "PVH mod size="
        leal    8(%ebx), %esi
        call    put64
        PRINT   " page_offset="
        movl    (%ebx), %eax
        andl    $0xfff, %eax
        call    puthex
        PRINT   " data=["
        movl    8(%ebx), %ecx
        cmpl    $24, %ecx
        jbe     2f
        movl    $24, %ecx
2:      movl    (%ebx), %esi
        call    putn
        PRINT   "]"
        NL
1:      PRINT   "PVH rsdp="
        leal    32(%ebp), %esi
        call    put64
        NL
        PRINT   "PVH memmap_entries="
        movl    48(%ebp), %eax
        call    puthex
        NL
        cmpl    $0, 48(%ebp)
        je      3f
        movl    40(%ebp), %ebx          /* hvm_memmap_table_entry: addr, size, type */
        PRINT   "PVH memmap0 addr="
        movl    %ebx, %esi
        call    put64
        PRINT   " size="
        leal    8(%ebx), %esi
        call    put64
        PRINT   " type="
        movl    16(%ebx), %eax
        call    puthex
        NL
3:      PRINT   "PVH done"
        NL
        movb    $0x11, %al
        jmp     exit


        .bss
        .align  16
        .space  4096
stack_top:
