/* A 64 KiB firmware image for measuring the cost of one guest exit to the device model.
 * Loaded with -bios on our device model and on QEMU, and by bench/minivmm.c (a minimal VMM):
 * the CPU starts in real mode at f000:fff0, this code times COUNT port reads of 0x64 and
 * COUNT memory reads of 0xa0000 (MMIO on a PC without VGA) with rdtsc, prints
 *   EXITCOST pio_cycles=N mmio_cycles=M
 * on COM1 and writes 0 to the isa-debug-exit port 0xf4. */
        .code16
        .set COUNT, 20000
        .text
        .org 0
start:
        cli
        xorw %ax, %ax
        movw %ax, %ss
        movw $0x7000, %sp
        movw $0xa000, %ax
        movw %ax, %es
        /* port reads */
        movw $0x64, %dx
        movl $COUNT, %ecx
        rdtsc
        movl %eax, %esi
        movl %edx, %edi
1:      inb %dx, %al
        loopl 1b
        call elapsed
        movw $msg_pio - start, %si
        call puts_cs
        call putdec
        /* MMIO reads */
        movl $COUNT, %ecx
        rdtsc
        movl %eax, %esi
        movl %edx, %edi
2:      movb %es:0, %al
        loopl 2b
        call elapsed
        movw $msg_mmio - start, %si
        call puts_cs
        call putdec
        movb $'\n', %al
        call putc
        movw $0xf4, %dx
        xorl %eax, %eax
        outl %eax, %dx
3:      hlt
        jmp 3b

/* eax = (rdtsc - edi:esi) / COUNT */
elapsed:
        rdtsc
        subl %esi, %eax
        sbbl %edi, %edx
        movl $COUNT, %ecx
        divl %ecx
        ret

putc:   /* al -> COM1 THR */
        pushw %dx
        movw $0x3f8, %dx
        outb %al, %dx
        popw %dx
        ret

puts_cs: /* NUL-terminated string at cs:si */
        pushl %eax
4:      movb %cs:(%si), %al
        testb %al, %al
        jz 5f
        call putc
        incw %si
        jmp 4b
5:      popl %eax
        ret

putdec: /* eax in decimal */
        movl $10, %ecx
        xorw %bx, %bx
6:      xorl %edx, %edx
        divl %ecx
        pushw %dx
        incw %bx
        testl %eax, %eax
        jnz 6b
7:      popw %ax
        addb $'0', %al
        call putc
        decw %bx
        jnz 7b
        ret

msg_pio:  .asciz "EXITCOST pio_cycles="
msg_mmio: .asciz " mmio_cycles="

        .org 0xfff0
reset:  ljmp $0xf000, $start - 0
        .org 0x10000
