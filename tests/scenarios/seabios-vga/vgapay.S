/* Text-mode payload for seabios-vga: loaded at 0:7c00 from an El Torito no-emulation CD. Prints a
 * line through the VGA BIOS (INT 10h teletype), writes a line straight into the text buffer at
 * 0xb8000 (yellow on blue), hides the cursor (so screenshots are stable) and halts. */
        .code16
        .text
        .globl _start
_start:
        jmp     start
        .org    64
start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %ss
        movw    $0x7c00, %sp
        sti
        movw    $m_tty, %si
1:      lodsb
        testb   %al, %al
        jz      2f
        movb    $0x0e, %ah
        xorw    %bx, %bx
        int     $0x10
        jmp     1b
2:      movw    $0xb800, %ax
        movw    %ax, %es
        movw    $(20 * 160), %di
        movw    $m_direct, %si
3:      lodsb
        testb   %al, %al
        jz      4f
        movb    $0x1e, %ah
        stosw
        jmp     3b
4:      movb    $0x01, %ah          /* cursor shape: CH bit 5 = cursor off */
        movw    $0x2000, %cx
        int     $0x10
halt:   hlt
        jmp     halt
m_tty:    .asciz "\r\nTEXT-PAYLOAD int10 teletype 0123456789\r\n"
m_direct: .asciz "DIRECT-B800 yellow on blue"
