/*
 * PVH entry, long-mode switch, AP trampoline and interrupt stubs.
 *
 * The VMM (Denovisor or QEMU) enters pvh_entry32 in flat 32-bit protected mode with paging
 * off and EBX = physical address of struct hvm_start_info. Nothing else is valid: no
 * stack, no GDT we may rely on, possibly non-zeroed .bss.
 */

#define CODE32_SEL 0x08
#define DATA_SEL 0x10
#define CODE64_SEL 0x18
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_NE 0x20
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define PTE_PRESENT_RW 0x3
#define PDE_2M_PAGE 0x83       /* present, writable, page size */
#define PDE_UNCACHED 0x18      /* PWT | PCD */
#define UNCACHED_FIRST_2M 1536 /* entries from 3 GiB up: MMIO hole, IOAPIC, LAPIC */

/* XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit physical entry point of a PVH kernel. */
	.section .note.Xen, "a"
	.balign 4
	.long 4          /* name size */
	.long 4          /* descriptor size */
	.long 18         /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry32
	.balign 4

/* Switches a CPU in flat 32-bit protected mode to long mode and jumps to \target. */
.macro ENTER_LONG_MODE target
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	movl %cr0, %eax
	orl $(CR0_PG | CR0_PE | CR0_NE), %eax
	movl %eax, %cr0
	ljmp $CODE64_SEL, $\target
.endm

.macro LOAD_DATA_SEGMENTS
	movw $DATA_SEL, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
.endm

/*
 * 32-bit code runs with paging off, so it needs no executable mapping; its own section
 * lets build.sh disassemble it as i386 code and the rest of .text as x86-64.
 */
	.section .boot32, "ax"
	.code32
	.global pvh_entry32
pvh_entry32:
	cli
	cld
	lgdt gdt_descriptor
	ljmp $CODE32_SEL, $1f
1:	LOAD_DATA_SEGMENTS
	movl $bsp_stack_top, %esp

	/* Zero .bss: a loader is allowed to leave it as it found the memory. */
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	movl %ebx, rt_start_info_paddr

	/* PML4[0] -> PDPT; PDPT[0..3] -> four page directories of 2 MiB pages (4 GiB). */
	movl $pdpt, %eax
	orl $PTE_PRESENT_RW, %eax
	movl %eax, pml4
	movl $page_directories, %eax
	orl $PTE_PRESENT_RW, %eax
	movl $pdpt, %edi
	movl $4, %ecx
2:	movl %eax, (%edi)
	addl $4096, %eax
	addl $8, %edi
	decl %ecx
	jnz 2b
	movl $page_directories, %edi
	xorl %edx, %edx
3:	movl %edx, %eax
	shll $21, %eax
	orl $PDE_2M_PAGE, %eax
	cmpl $UNCACHED_FIRST_2M, %edx
	jb 4f
	orl $PDE_UNCACHED, %eax
4:	movl %eax, (%edi)
	addl $8, %edi
	incl %edx
	cmpl $2048, %edx
	jb 3b

	ENTER_LONG_MODE bsp_entry64

/* An AP arrives here from the trampoline, in flat 32-bit mode on the runtime's GDT. */
	.global ap_entry32
ap_entry32:
	LOAD_DATA_SEGMENTS
	ENTER_LONG_MODE ap_entry64

	.text
	.code64
bsp_entry64:
	LOAD_DATA_SEGMENTS
	movq $bsp_stack_top, %rsp
	xorl %ebp, %ebp
	call rt_start
	jmp halt_forever

ap_entry64:
	LOAD_DATA_SEGMENTS
	movq ap_boot_stack(%rip), %rsp
	xorl %ebp, %ebp
	call rt_ap_start
halt_forever:
	cli
	hlt
	jmp halt_forever

/*
 * Interrupt stubs: 256 of them, 16 bytes apart, so the IDT entry for vector n points at
 * isr_stubs + 16 * n. Each pushes a dummy error code when the CPU pushes none, then the
 * vector, so that struct interrupt_frame has one shape.
 */
	/* Fill with hlt: gas would pad with 32-bit NOP forms after .code32, which desyncs objdump. */
	.balign 16, 0xf4
	.global isr_stubs
isr_stubs:
	.set vector, 0
	.rept 256
	.balign 16, 0xf4
	.if (vector == 8) || (vector == 10) || (vector == 11) || (vector == 12) || (vector == 13) || (vector == 14) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
	pushq $vector
	.else
	pushq $0
	pushq $vector
	.endif
	jmp isr_common
	.set vector, vector + 1
	.endr

isr_common:
	pushq %rax
	pushq %rbx
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %rbp
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call rt_interrupt_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq

/*
 * AP trampoline, copied to AP_TRAMPOLINE_ADDRESS (0x10000) by smp.c. An AP starts here
 * in real mode with CS = 0x1000, IP = 0. It lives in a data section so that objdump -d
 * does not decode 16-bit code as 64-bit code in build.sh's instruction check.
 */
	.section .data.trampoline, "aw"
	.code16
	.global ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl (ap_trampoline_gdtr - ap_trampoline_start)
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $CODE32_SEL, $ap_entry32
	.balign 8
ap_trampoline_gdtr:
	.word gdt_end - gdt - 1
	.long gdt
ap_trampoline_end:

	.section .data
	.balign 16
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: 32-bit code, flat */
	.quad 0x00cf92000000ffff /* 0x10: data, flat */
	.quad 0x00af9a000000ffff /* 0x18: 64-bit code */
gdt_end:
	.balign 8
	.global gdt_descriptor
gdt_descriptor:
	.word gdt_end - gdt - 1
	.quad gdt          /* lgdt in 32-bit mode reads the low 4 bytes of the base */
	.global rt_start_info_paddr
rt_start_info_paddr:
	.long 0

	.section .bss
	.balign 4096
pml4:
	.skip 4096
pdpt:
	.skip 4096
page_directories:
	.skip 4 * 4096
	.balign 16
bsp_stack:
	.skip 16384
bsp_stack_top:

	.section .note.GNU-stack, "", @progbits
