/**
 * Offsets of the Linux x86 setup header fields (Documentation/arch/x86/boot.rst). They are
 * offsets both into a bzImage file and into `boot_params` (the zero page), where the header
 * is copied unchanged at 0x1f1.
 *
 * @module
 */

/** Setup header field offsets, named as in boot.rst. */
export const SetupHeaderOffset = {
  setup_sects: 0x1f1,
  root_flags: 0x1f2,
  syssize: 0x1f4,
  ram_size: 0x1f8,
  vid_mode: 0x1fa,
  root_dev: 0x1fc,
  boot_flag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  realmode_swtch: 0x208,
  start_sys_seg: 0x20c,
  kernel_version: 0x20e,
  type_of_loader: 0x210,
  loadflags: 0x211,
  setup_move_size: 0x212,
  code32_start: 0x214,
  ramdisk_image: 0x218,
  ramdisk_size: 0x21c,
  bootsect_kludge: 0x220,
  heap_end_ptr: 0x224,
  ext_loader_ver: 0x226,
  ext_loader_type: 0x227,
  cmd_line_ptr: 0x228,
  initrd_addr_max: 0x22c,
  kernel_alignment: 0x230,
  relocatable_kernel: 0x234,
  min_alignment: 0x235,
  xloadflags: 0x236,
  cmdline_size: 0x238,
  hardware_subarch: 0x23c,
  hardware_subarch_data: 0x240,
  payload_offset: 0x248,
  payload_length: 0x24c,
  setup_data: 0x250,
  pref_address: 0x258,
  init_size: 0x260,
  handover_offset: 0x264,
  kernel_info_offset: 0x268,
} as const;

/** Where the setup header starts, in the file and in boot_params. */
export const SETUP_HEADER_START = 0x1f1;
/** boot_params reserves the header area up to edd_mbr_sig_buffer at 0x290. */
export const SETUP_HEADER_AREA_END = 0x290;
/** boot_flag value: the legacy boot sector signature. */
export const BOOT_FLAG_MAGIC = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HEADER_MAGIC = 0x53726448;

/** loadflags bits. */
export const LOADED_HIGH = 1 << 0;
export const KASLR_FLAG = 1 << 1;
export const QUIET_FLAG = 1 << 5;
export const KEEP_SEGMENTS = 1 << 6;
export const CAN_USE_HEAP = 1 << 7;

/** xloadflags bits (protocol 2.12+). */
export const XLF_KERNEL_64 = 1 << 0;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1;
export const XLF_EFI_HANDOVER_32 = 1 << 2;
export const XLF_EFI_HANDOVER_64 = 1 << 3;
export const XLF_EFI_KEXEC = 1 << 4;

/** type_of_loader value for a boot loader without an assigned id. */
export const LOADER_TYPE_UNDEFINED = 0xff;
/** Boot protocol 2.12: the first with xloadflags and so with a declared 64-bit entry. */
export const BOOT_PROTOCOL_64BIT = 0x020c;
