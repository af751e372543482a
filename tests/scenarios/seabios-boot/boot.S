/* 16-bit boot payload for SeaBIOS: loaded at 0:7c00 as an MBR or an El Torito no-emulation
 * boot image. Prints which drive it booted from, reads the block after itself through INT 13h
 * AH=42h (LBA 1 on a disk; boot-file LBA + 1 on a CD, from the boot info table), prints the
 * string found there, then exits the VM through isa-debug-exit (port 0xf4). */
        .code16
        .text
        .globl _start
_start:
        jmp     start
        .org    8
bi_pvd:  .long 0            /* El Torito boot info table: filled by xorriso -boot-info-table */
bi_file: .long 0            /* LBA of this boot file (2048-byte sectors); 0 on a disk */
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
        movb    %dl, drive
        movw    $m_hello, %si
        call    puts
        movb    drive, %al
        call    puthex
        movw    $m_nl, %si
        call    puts
        /* LBA of the next block: boot file + 1 on a CD, 1 on a disk */
        movl    bi_file, %eax
        incl    %eax
        movl    %eax, dap_lba
        movw    $dap, %si
        movb    drive, %dl
        movb    $0x42, %ah
        int     $0x13
        jc      readfail
        movw    $m_read, %si
        call    puts
        movw    $0x8000, %si
        call    puts
        movb    $0x31, %al          /* exit status (0x31 << 1) | 1 = 99 */
        outb    %al, $0xf4
        jmp     halt
readfail:
        movb    %ah, %bl
        movw    $m_fail, %si
        call    puts
        movb    %bl, %al
        call    puthex
        movw    $m_nl, %si
        call    puts
        movb    $0x30, %al          /* exit status 97 */
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
        andb    $0x0f, %al
nibble: addb    $'0', %al
        cmpb    $'9', %al
        jbe     3f
        addb    $7, %al
3:      jmp     putc

        .align  4
dap:    .byte   0x10, 0
        .word   1               /* one block */
        .word   0x8000, 0       /* buffer 0000:8000 */
dap_lba: .long  0, 0
drive:  .byte   0
m_hello: .asciz "SEABIOS-PAYLOAD booted dl=0x"
m_read: .asciz  "INT13-READ: "
m_fail: .asciz  "INT13-READ-FAILED ah=0x"
m_nl:   .asciz  "\r\n"
