/* 16-bit boot payload for SeaBIOS with the standard VGA: loaded at 0:7c00 from an El Torito
 * no-emulation CD. It writes a marker through INT 10h teletype, then prints on COM1 what the
 * VGA text screen holds (rows 0-7 of 0xb8000, characters only), asks the VGA BIOS for VBE
 * controller information (INT 10h AX=4F00h) and prints the result, then exits through
 * isa-debug-exit (port 0xf4) with status (0x31 << 1) | 1 = 99. */
        .code16
        .text
        .globl _start
_start:
        jmp     start
        .org    8
bi_pvd:  .long 0            /* El Torito boot info table (xorriso -boot-info-table) */
bi_file: .long 0
bi_len:  .long 0
bi_sum:  .long 0
        .org    64
start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7c00, %sp
        sti
        /* INT 10h AH=0Eh: teletype the marker onto the screen */
        movw    $m_tty, %si
1:      lodsb
        testb   %al, %al
        jz      2f
        movb    $0x0e, %ah
        movw    $0x0007, %bx
        int     $0x10
        jmp     1b
2:
        /* Dump rows 0-7 of the text screen */
        xorb    %cl, %cl            /* row */
row:    movw    $m_row, %si
        call    puts
        movb    %cl, %al
        addb    $'0', %al
        call    putc
        movb    $':', %al
        call    putc
        movb    %cl, %al
        xorb    %ah, %ah
        movw    $160, %dx
        mulw    %dx
        movw    %ax, %di
        movw    $0xb800, %ax
        movw    %ax, %es
        movw    $80, %dx
3:      movb    %es:(%di), %al
        cmpb    $0x20, %al
        jb      4f
        cmpb    $0x7e, %al
        jbe     5f
4:      movb    $'.', %al
5:      call    putc
        addw    $2, %di
        decw    %dx
        jnz     3b
        movw    $m_end, %si
        call    puts
        incb    %cl
        cmpb    $8, %cl
        jb      row
        /* VBE controller information into 0:8000 */
        xorw    %ax, %ax
        movw    %ax, %es
        movw    $0x8000, %di
        movl    $0x32454256, (%di)  /* "VBE2" */
        movw    $0x4f00, %ax
        int     $0x10
        movw    %ax, %bx
        movw    $m_vbe, %si
        call    puts
        movb    %bh, %al
        call    puthex
        movb    %bl, %al
        call    puthex
        movw    $m_sig, %si
        call    puts
        movw    $0x8000, %si
        movw    $4, %cx
6:      lodsb
        call    putc
        loop    6b
        movw    $m_mem, %si
        call    puts
        movb    0x8013, %al
        call    puthex
        movb    0x8012, %al
        call    puthex
        movw    $m_nl, %si
        call    puts
        movb    $0x31, %al
        outb    %al, $0xf4
halt:   cli
        hlt
        jmp     halt

/* COM1 output by polling LSR.THRE */
putc:   pushw   %dx
        movb    %al, %ah
        movw    $0x3fd, %dx
1:      inb     %dx, %al
        testb   $0x20, %al
        jz      1b
        movw    $0x3f8, %dx
        movb    %ah, %al
        outb    %al, %dx
        popw    %dx
        ret
puts:   lodsb
        testb   %al, %al
        jz      2f
        call    putc
        jmp     puts
2:      ret
puthex: pushw   %ax
        shrb    $4, %al
        call    nibble
        popw    %ax
nibble: andb    $0x0f, %al
        addb    $'0', %al
        cmpb    $'9', %al
        jbe     1f
        addb    $7, %al
1:      jmp     putc

m_tty:  .asciz  "PAYLOAD-ON-SCREEN"
m_row:  .asciz  "VGA-ROW"
m_end:  .asciz  "|\r\n"
m_vbe:  .asciz  "VBE-AX="
m_sig:  .asciz  " SIG="
m_mem:  .asciz  " MEM64K="
m_nl:   .asciz  "\r\n"
