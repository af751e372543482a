/* Shared by the test kernels: COM1 output by polling, and the isa-debug-exit exit.
 * 32-bit protected mode, flat segments, no stack assumptions beyond the one _start sets.
 * Every routine preserves all registers (pusha/popa). */
        .text
/* putc: AL to COM1 once LSR.THRE (bit 5) says the holding register is empty */
putc:   pusha
        movb    %al, %ah
        movw    $0x3fd, %dx
1:      inb     %dx, %al
        testb   $0x20, %al
        jz      1b
        movw    $0x3f8, %dx
        movb    %ah, %al
        outb    %al, %dx
        popa
        ret
/* puts: the NUL-terminated string at ESI, at most 240 characters (guest data is untrusted) */
puts:   pusha
        movl    $240, %ecx
1:      lodsb
        testb   %al, %al
        jz      2f
        call    putc
        loop    1b
2:      popa
        ret
/* putn: ECX bytes at ESI, non-printable ones as '.', stopping at a NUL */
putn:   pusha
        jecxz   2f
1:      lodsb
        testb   %al, %al
        jz      2f
        cmpb    $0x20, %al
        jb      3f
        cmpb    $0x7e, %al
        jbe     4f
3:      movb    $'.', %al
4:      call    putc
        loop    1b
2:      popa
        ret
/* puthex: EAX as 8 upper-case hex digits */
puthex: pusha
        movl    %eax, %edx
        movl    $8, %ecx
1:      roll    $4, %edx
        movb    %dl, %al
        andb    $0x0f, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     2f
        addb    $7, %al
2:      call    putc
        loop    1b
        popa
        ret
/* put64: the 64-bit value at ESI (little-endian) as 16 hex digits */
put64:  pusha
        movl    4(%esi), %eax
        call    puthex
        movl    (%esi), %eax
        call    puthex
        popa
        ret

.macro PRINT str
        .pushsection .rodata
.Lstr\@: .asciz "\str"
        .popsection
        pushl   %esi
        movl    $.Lstr\@, %esi
        call    puts
        popl    %esi
.endm
.macro NL
        PRINT   "\r\n"
.endm

/* exit: isa-debug-exit at 0xf4 makes the device model exit with (AL << 1) | 1 */
exit:   outb    %al, $0xf4
1:      cli
        hlt
        jmp     1b
