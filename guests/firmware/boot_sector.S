/*
 * A boot sector for the firmware-boot tests (MBR on a disk, or an El Torito
 * no-emulation image on a CD; both are loaded at 0x7c00 with the drive in DL).
 * It prints a line through the BIOS (int 10h, which SeaBIOS's sercon copies to
 * the serial port) and one straight to COM1, reads LBA 1 of its boot drive with
 * int 13h extended read and prints it when it holds text, tries to change a byte of
 * the BIOS at F000:0000 (SeaBIOS makes the F segment read-only through the i440FX's PAM
 * before it boots) and says whether it stuck, then ends the VM through
 * the debug-exit port 0xf4 with status 7 (9 when the read failed). It waits a
 * little after BIOS output (int 15h AH=86h) so that SeaBIOS's sercon has sent it.
 *
 * Build: as --32 -o boot_sector.o boot_sector.S
 *        ld -m elf_i386 -Ttext 0x7c00 --oformat binary -o boot_sector.bin boot_sector.o
 */
	.code16
	.text
	.globl	_start
_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	ljmp	$0, $start		/* CS:IP may be 07c0:0000 */
start:
	sti
	movb	%dl, drive
	movw	$bios_line, %si
	call	print_bios
	call	settle
	movw	$com1_line, %si
	call	print_com1
	/* Flip every bit of F000:0000 and read it back; put the byte back if it changed. */
	pushw	%ds
	movw	$0xf000, %ax
	movw	%ax, %ds
	movb	0, %al
	notb	%al
	movb	%al, 0
	cmpb	%al, 0
	jne	1f
	notb	%al
	movb	%al, 0
	popw	%ds
	movw	$bios_writable, %si
	jmp	2f
1:	popw	%ds
	movw	$bios_read_only, %si
2:	call	print_com1
	/* int 13h, AH=42h: read 1 sector at LBA 1 into 0000:8000 (DS:SI = packet). */
	movw	$packet, %si
	movb	drive, %dl
	movb	$0x42, %ah
	int	$0x13
	jc	failed
	cmpb	$0, 0x8000
	je	done
	movw	$0x8000, %si
	call	print_bios
done:
	call	settle
	movb	$7, %al
	outb	%al, $0xf4
	jmp	halt
failed:
	movw	$read_failed, %si
	call	print_bios
	call	settle
	movb	$9, %al
	outb	%al, $0xf4
halt:
	cli
	hlt
	jmp	halt

/*
 * Waits 200 ms with int 15h AH=86h: SeaBIOS's sercon sends int 10h text to the
 * serial port from its timer, so the text is out before the next line or the exit.
 */
settle:
	movb	$0x86, %ah
	movw	$0x0003, %cx
	movw	$0x0d40, %dx
	int	$0x15
	ret

/* Prints the NUL-terminated string at DS:SI with int 10h teletype output. */
print_bios:
	lodsb
	testb	%al, %al
	jz	1f
	movb	$0x0e, %ah
	xorw	%bx, %bx
	int	$0x10
	jmp	print_bios
1:	ret

/* Prints the NUL-terminated string at DS:SI on COM1 (0x3f8), waiting for THRE. */
print_com1:
	lodsb
	testb	%al, %al
	jz	2f
	movb	%al, %ah
	movw	$0x3fd, %dx
1:	inb	%dx, %al
	testb	$0x20, %al
	jz	1b
	movw	$0x3f8, %dx
	movb	%ah, %al
	outb	%al, %dx
	jmp	print_com1
2:	ret

	.balign	4
packet:	.byte	16, 0		/* size, reserved */
	.word	1		/* sectors */
	.word	0x8000, 0	/* buffer offset, segment */
	.quad	1		/* LBA */
drive:	.byte	0
bios_line:	.asciz	"boot sector: hello through int 10h\r\n"
com1_line:	.asciz	"boot sector: hello on COM1\r\n"
read_failed:	.asciz	"boot sector: int 13h read failed\r\n"
bios_read_only:	.asciz	"F segment: read-only\r\n"
bios_writable:	.asciz	"F segment: writable\r\n"

	.org	510
	.byte	0x55, 0xaa
