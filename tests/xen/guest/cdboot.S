/*
 * El Torito "no emulation" boot image for the Xen HVM test guest (tests/xen).
 * SeaBIOS loads it at 0000:7C00 in real mode and jumps to it. It prints a marker to COM1 (port 0x3f8),
 * then "XENCD-COUNT <n> THRE-WAITS <w>" every second BIOS timer tick (~110 ms), forever: n counts lines from 1,
 * w counts the line-status reads that found the transmitter busy (0 on an instant UART); both hex, 8 digits.
 * The counter lives in a register and guest RAM only, so after a save/restore it continues where it was.
 * Waiting is `hlt` until the BIOS tick count at 0040:006C changes: no busy loop (everything runs under TCG).
 * Build: as --32 -o cdboot.o cdboot.S && ld -m elf_i386 -Ttext=0x7c00 --oformat binary -o cdboot.bin cdboot.o
 */
	.code16
	.text
	.globl _start
_start:
	cli
	xor	%ax, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$0x7c00, %sp
	ljmp	$0, $1f			/* normalise CS:IP (some BIOSes jump to 07C0:0000) */
1:	cld
	sti
	mov	$marker, %si
	call	puts
	xor	%ebx, %ebx		/* the counter */
next:
	mov	$2, %cx			/* two ticks of 54.9 ms */
wait:
	mov	0x46c, %dx
2:	hlt
	cmp	0x46c, %dx
	je	2b
	loop	wait
	inc	%ebx
	mov	$count, %si
	call	puts
	mov	%ebx, %eax
	call	puthex
	mov	$waits, %si
	call	puts
	mov	thre_waits, %eax
	call	puthex
	mov	$crlf, %si
	call	puts
	jmp	next

/* puthex: print EAX as eight hex digits, most significant first */
puthex:
	push	%cx
	mov	$8, %cx
3:	rol	$4, %eax
	push	%eax
	and	$0xf, %al
	add	$'0', %al
	cmp	$'9', %al
	jbe	4f
	add	$('a' - '9' - 1), %al
4:	call	putc
	pop	%eax
	loop	3b
	pop	%cx
	ret

/* puts: print the NUL-terminated string at DS:SI */
puts:
	lodsb
	test	%al, %al
	jz	5f
	call	putc
	jmp	puts
5:	ret

/* putc: print AL on COM1, waiting (bounded) for the transmit holding register to be empty */
putc:
	push	%cx
	push	%dx
	push	%ax
	mov	$0x3fd, %dx		/* line status register */
	mov	$0x1000, %cx
6:	in	%dx, %al
	test	$0x20, %al
	jnz	7f
	incl	thre_waits		/* the device model said "still sending": count it (a slow UART shows here) */
	loop	6b
7:	pop	%ax
	mov	$0x3f8, %dx
	out	%al, %dx
	pop	%dx
	pop	%cx
	ret

marker:	.asciz	"\r\nXENCD-MARKER booted from CD\r\n"
count:	.asciz	"XENCD-COUNT "
waits:	.asciz	" THRE-WAITS "
crlf:	.asciz	"\r\n"
	.balign	4
thre_waits: .long 0			/* LSR reads that found the transmitter busy, since boot */
	.org	2048, 0			/* one whole 2048-byte CD sector (boot-load-size 4) */
