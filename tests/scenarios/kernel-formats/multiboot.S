/* A multiboot v1 test kernel: prints what the boot loader passed (spec 0.6.96 section 3.3) on
 * COM1 and exits through isa-debug-exit with status (0x10 << 1) | 1 = 33.
 * Built twice by prepare.sh: with -DAOUT the header carries the a.out kludge load addresses
 * (flag 16), without it the loader must use the ELF program headers. */
#include "common.S"
#define MB_MAGIC 0x1BADB002
#ifdef AOUT
#define MB_FLAGS 0x00010003
#else
#define MB_FLAGS 0x00000003
#endif
        .section .text.head, "ax"
        .code32
        .globl  _start
        .align  4
mb_header:
        .long   MB_MAGIC
        .long   MB_FLAGS
        .long   -(MB_MAGIC + MB_FLAGS)
#ifdef AOUT
        .long   mb_header       /* header_addr */
        .long   _load_start     /* load_addr */
        .long   _load_end       /* load_end_addr */
        .long   _bss_end        /* bss_end_addr */
        .long   _start          /* entry_addr */
#endif
_start:
        movl    $stack_top, %esp
        movl    %ebx, %ebp
        PRINT   "MB magic="
        call    puthex                  /* EAX as the loader left it */
        NL
        PRINT   "MB flags="
        movl    (%ebp), %eax
        call    puthex
        NL
        PRINT   "MB mem_lower="
        movl    4(%ebp), %eax
        call    puthex
        PRINT   " mem_upper="
        movl    8(%ebp), %eax
        call    puthex
        NL
        PRINT   "MB boot_device="
        movl    12(%ebp), %eax
        call    puthex
        NL
        PRINT   "MB cmdline=["
        movl    16(%ebp), %esi
        call    puts
        PRINT   "]"
        NL
        PRINT   "MB mods_count="
        movl    20(%ebp), %eax
        call    puthex
        NL
        /* each module (at most 8): its command line, length, page offset and first bytes */
        movl    20(%ebp), %edi
        cmpl    $8, %edi
        jbe     1f
        movl    $8, %edi
1:      movl    24(%ebp), %ebx
mod_loop:
        testl   %edi, %edi
        jz      mods_done
        PRINT   "MB mod cmdline=["
        movl    8(%ebx), %esi
        call    puts
        PRINT   "] len="
        movl    4(%ebx), %eax
        subl    (%ebx), %eax
        call    puthex
        PRINT   " page_offset="
        movl    (%ebx), %eax
        andl    $0xfff, %eax
        call    puthex
        PRINT   " data=["
        movl    4(%ebx), %ecx
        subl    (%ebx), %ecx
        cmpl    $24, %ecx
        jbe     2f
        movl    $24, %ecx
2:      movl    (%ebx), %esi
        call    putn
        PRINT   "]"
        NL
        addl    $16, %ebx
        decl    %edi
        jmp     mod_loop
mods_done:
        PRINT   "MB mmap_length="
        movl    44(%ebp), %eax
        call    puthex
        NL
        /* every mmap entry (at most 16): size, base, length, type; entries are size + 4 apart */
        movl    48(%ebp), %ebx
        movl    %ebx, %edi
        addl    44(%ebp), %edi
        movl    $16, %ecx
mmap_loop:
        cmpl    %edi, %ebx
        jae     mmap_done
        PRINT   "MB mmap size="
        movl    (%ebx), %eax
        call    puthex
        PRINT   " base="
        leal    4(%ebx), %esi
        call    put64
        PRINT   " len="
        leal    12(%ebx), %esi
        call    put64
        PRINT   " type="
        movl    20(%ebx), %eax
        call    puthex
        NL
        movl    (%ebx), %eax
        leal    4(%ebx,%eax), %ebx
        loop    mmap_loop
mmap_done:
        PRINT   "MB loader=["
        movl    64(%ebp), %esi
        call    puts
        PRINT   "]"
        NL
        PRINT   "MB done"
        NL
        movb    $0x10, %al
        jmp     exit


        .bss
        .align  16
        .space  4096
stack_top:
