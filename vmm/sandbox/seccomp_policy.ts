/**
 * The VMM's system-call policy: one table, one line of reason per call. It was measured
 * with `strace -f -c` over `denovisor run` up to the KVM open and over the device tests
 * (virtio-blk, virtio-net with taps, the control API, the event loop; see the README's
 * security section for how to re-measure), and completed by reading the run path that
 * needs KVM (vCPU Workers, KVM ioctls, the kick signal, reboots that rebuild the machine).
 *
 * The filter is installed after the machine is built and the sockets listen, right
 * before the first vCPU runs, so start-up calls (execve, dlopen, tap creation, bind and
 * listen) need not be here; a reboot rebuilds the machine under the filter, so what
 * `build` calls is (opening images and /dev/net/tun, OFD locks, KVM_CREATE_VM).
 *
 * @module
 */

import { KVM } from "../../ffi/kvm/ioctls.ts";

/** A call the VMM makes, and why. */
export interface AllowedCall {
  name: string;
  why: string;
  /** Only these values (low 32 bits) of argument `arg`; anything else gets the mode's default. */
  oneOf?: {
    arg: number;
    values: readonly number[];
    /**
     * Fail other values with this errno (in `strict` and `log`) instead of killing or
     * logging: for a call whose other uses are never the VMM's but may be its runtime's,
     * which copes with a refusal (a network socket for deno's update check when run from
     * source without DENO_NO_UPDATE_CHECK: it killed `denovisor run` under `strict`).
     */
    refuseWith?: number;
  };
  /** Only when none of these bits is set in argument `arg`; otherwise the process is killed. */
  clearBits?: { arg: number; bits: number };
  /** Only when argument `arg` is this process's own pid; otherwise the mode's default. */
  ownPid?: { arg: number };
}

/** Terminal, socket and block-device ioctl requests (asm-generic/ioctls.h, linux/fs.h, if_tun.h). */
export const OTHER_IOCTLS = {
  TCGETS: 0x5401,
  TCSETS: 0x5402,
  TCSETSW: 0x5403,
  TCSETSF: 0x5404,
  TIOCGWINSZ: 0x5413,
  FIONREAD: 0x541b,
  FIONBIO: 0x5421,
  FIONCLEX: 0x5450,
  FIOCLEX: 0x5451,
  TUNSETIFF: 0x400454ca,
  TUNSETPERSIST: 0x400454cb,
  TUNSETOFFLOAD: 0x400454d0,
  TUNSETVNETHDRSZ: 0x400454d8,
  SIOCGIFFLAGS: 0x8913,
  SIOCGIFINDEX: 0x8933, // if_nametoindex(3): does a tap exist (a reboot rebuilds the NICs)
  SIOCSIFFLAGS: 0x8914,
  SIOCBRADDIF: 0x89a2,
  BLKSSZGET: 0x1268,
  BLKDISCARD: 0x1277,
  BLKZEROOUT: 0x127f,
  BLKGETSIZE64: 0x80081272,
} as const;

/** Every ioctl request the VMM may make: its KVM requests and the few above. */
export const ALLOWED_IOCTLS: readonly number[] = [
  // The hottest first: the filter compares them in order.
  Number(KVM.RUN),
  Number(KVM.IRQ_LINE),
  ...Object.values(KVM).map((request) => Number(request)),
  ...Object.values(OTHER_IOCTLS),
];

const AF_UNIX = 1;
const EACCES = 13;
const PR_SET_NAME = 15;
const PR_GET_NAME = 16;
const PR_GET_SECCOMP = 21;
const PR_GET_NO_NEW_PRIVS = 39;
/** PR_SET_VMA: names anonymous mappings (V8's allocator does, for /proc/PID/maps). */
const PR_SET_VMA = 0x53564d41;

/**
 * clone(2) flags that create namespaces: a thread never needs them, a compromised VMM
 * would use them to escape its view of the host.
 */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | // CLONE_NEWNS
  0x02000000 | // CLONE_NEWCGROUP
  0x04000000 | // CLONE_NEWUTS
  0x08000000 | // CLONE_NEWIPC
  0x10000000 | // CLONE_NEWUSER
  0x20000000 | // CLONE_NEWPID
  0x40000000; // CLONE_NEWNET

/** The allow-list, hottest first (the filter tests calls in this order). */
export const ALLOWED_CALLS: readonly AllowedCall[] = [
  {
    name: "ioctl",
    why: "KVM_RUN and the KVM, tap, terminal and block requests",
    oneOf: { arg: 1, values: ALLOWED_IOCTLS },
  },
  { name: "futex", why: "Atomics.wait between vCPU Workers and the main thread; runtime locks" },
  { name: "epoll_wait", why: "the runtime's reactor and the device event loop" },
  { name: "epoll_pwait", why: "the same, with a signal mask" },
  { name: "read", why: "eventfds (ioeventfd), taps, the console, files" },
  { name: "write", why: "eventfds (irqfd), taps, the console, the log" },
  { name: "readv", why: "taps and sockets with scatter lists" },
  { name: "writev", why: "taps and sockets with scatter lists" },
  { name: "pread64", why: "disk images (raw and qcow2)" },
  { name: "pwrite64", why: "disk images" },
  { name: "preadv", why: "virtio-blk requests straight into guest RAM" },
  { name: "pwritev", why: "virtio-blk requests straight from guest RAM" },
  { name: "preadv2", why: "the runtime's file reads" },
  { name: "pwritev2", why: "the runtime's file writes" },
  { name: "recvfrom", why: "the control and console sockets" },
  { name: "sendto", why: "the control and console sockets" },
  { name: "recvmsg", why: "unix sockets" },
  { name: "sendmsg", why: "unix sockets" },
  { name: "sched_yield", why: "spin-then-park loops in V8 and the runtime" },
  { name: "clock_gettime", why: "timers when the vDSO is not used" },
  { name: "gettimeofday", why: "the same" },
  { name: "clock_nanosleep", why: "sleeping threads" },
  { name: "nanosleep", why: "sleeping threads" },
  { name: "madvise", why: "V8's heap, malloc trimming, the balloon's freed guest pages" },
  { name: "mmap", why: "V8's heap and code space, thread stacks, guest RAM on rebuild" },
  { name: "munmap", why: "the same, released" },
  { name: "mprotect", why: "V8's JIT (PROT_EXEC flips), guard pages of new threads" },
  { name: "pkey_mprotect", why: "V8's JIT write protection on hosts with protection keys" },
  { name: "pkey_alloc", why: "the same" },
  { name: "pkey_free", why: "the same" },
  { name: "mremap", why: "malloc and V8 growing buffers" },
  { name: "brk", why: "malloc" },
  { name: "epoll_ctl", why: "registering sockets, eventfds and taps" },
  { name: "epoll_create1", why: "the device event loop of a rebuilt machine" },
  { name: "eventfd2", why: "the runtime's wakers; ioeventfds and irqfds of a rebuilt machine" },
  { name: "close", why: "every descriptor's end" },
  { name: "fcntl", why: "non-blocking flags and the disk images' OFD locks" },
  { name: "dup", why: "the runtime's descriptor handling" },
  { name: "dup2", why: "stdout and stderr onto the log file" },
  { name: "dup3", why: "the same" },
  { name: "pipe2", why: "the runtime's signal pipe" },
  { name: "openat", why: "reboots reopen images, Workers load their module, /proc/self for stats" },
  { name: "newfstatat", why: "the runtime's stat" },
  { name: "fstat", why: "image sizes, the runtime's stat" },
  { name: "statx", why: "the runtime's stat" },
  { name: "lstat", why: "the runtime's module resolution" },
  { name: "stat", why: "the same" },
  { name: "fstatfs", why: "the filesystem of an image (direct I/O alignment)" },
  { name: "statfs", why: "the same, by path" },
  { name: "readlink", why: "the runtime's module resolution" },
  { name: "readlinkat", why: "the same" },
  { name: "getdents64", why: "directory reads" },
  { name: "getcwd", why: "the runtime resolves relative paths" },
  { name: "access", why: "the runtime's existence checks" },
  { name: "faccessat2", why: "the same" },
  { name: "lseek", why: "SEEK_DATA/SEEK_HOLE on sparse images, file positions" },
  { name: "fsync", why: "virtio-blk flush, atomic writes of end.json and saved state" },
  { name: "fdatasync", why: "virtio-blk flush" },
  { name: "fallocate", why: "discard and write-zeroes, qcow2 growth" },
  { name: "ftruncate", why: "qcow2 growth, saved memory files" },
  { name: "rename", why: "atomic writes (end.json, saved state)" },
  { name: "renameat", why: "the same" },
  { name: "renameat2", why: "the same" },
  { name: "unlink", why: "removing the sockets and pid file at the end" },
  { name: "unlinkat", why: "the same" },
  { name: "mkdir", why: "a save's directory" },
  { name: "mkdirat", why: "the same" },
  { name: "fchmod", why: "modes of files the VMM writes" },
  {
    name: "fchown",
    why: "SQLite (Deno's module and code caches) gives a journal its database's owner",
  },
  { name: "flock", why: "Deno's cache and lock files" },
  { name: "chmod", why: "saved state files are made 0600 (vmm/snapshot/atomic_write.ts)" },
  { name: "fchmodat", why: "the same" },
  {
    name: "socket",
    why: "unix sockets only: no network access (others fail with EACCES)",
    oneOf: { arg: 0, values: [AF_UNIX], refuseWith: EACCES },
  },
  { name: "socketpair", why: "the runtime's internal channels" },
  { name: "accept4", why: "control and console connections" },
  { name: "accept", why: "the same" },
  { name: "connect", why: "unix sockets (socket is limited to AF_UNIX)" },
  { name: "bind", why: "the same" },
  { name: "listen", why: "the same" },
  { name: "shutdown", why: "closing HTTP connections" },
  { name: "getsockopt", why: "SO_ERROR after a non-blocking connect" },
  { name: "setsockopt", why: "socket options of accepted connections" },
  { name: "getsockname", why: "the runtime's socket addresses" },
  { name: "getpeername", why: "the same" },
  { name: "rt_sigaction", why: "the kick signal's handler, Deno.addSignalListener" },
  { name: "rt_sigprocmask", why: "thread start-up, signal handling" },
  { name: "rt_sigreturn", why: "returning from any signal handler" },
  { name: "sigaltstack", why: "each new thread's signal stack" },
  { name: "restart_syscall", why: "a call interrupted by the kick signal resumes" },
  {
    name: "tgkill",
    why: "SIGUSR2 to a vCPU thread out of KVM_RUN; abort(); this process only",
    ownPid: { arg: 0 },
  },
  { name: "getpid", why: "tgkill's target, Deno.pid" },
  { name: "gettid", why: "a vCPU thread's id for the kick" },
  { name: "getppid", why: "the runtime" },
  { name: "getuid", why: "the runtime" },
  { name: "geteuid", why: "the runtime" },
  { name: "getgid", why: "the runtime" },
  { name: "getegid", why: "the runtime" },
  {
    name: "clone",
    why: "new threads (Workers, runtime pools), never new namespaces",
    clearBits: { arg: 0, bits: CLONE_NAMESPACE_FLAGS },
  },
  { name: "set_robust_list", why: "each new thread" },
  { name: "rseq", why: "each new thread (glibc)" },
  { name: "set_tid_address", why: "each new thread" },
  { name: "arch_prctl", why: "thread-local storage set-up" },
  {
    name: "prctl",
    why: "thread and mapping names; reading the seccomp and no_new_privs state",
    oneOf: {
      arg: 0,
      values: [PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_SECCOMP, PR_GET_NO_NEW_PRIVS],
    },
  },
  { name: "sched_getaffinity", why: "the runtime sizes its thread pools" },
  { name: "sched_getparam", why: "thread start-up (V8)" },
  { name: "sched_getscheduler", why: "thread start-up (V8)" },
  { name: "getrandom", why: "virtio-rng, Math.random and crypto seeds" },
  { name: "uname", why: "the runtime" },
  { name: "sysinfo", why: "the runtime's memory figures" },
  { name: "prlimit64", why: "the runtime reads its limits" },
  { name: "getrusage", why: "CPU times for stats" },
  { name: "poll", why: "terminal and socket readiness" },
  { name: "ppoll", why: "the same" },
  { name: "exit", why: "a thread's end" },
  { name: "exit_group", why: "the process's end" },
];

/**
 * Calls the VMM never makes and that only an attacker would: they kill the process in
 * every mode but `off`, even where other unknown calls are only logged.
 */
export const FORBIDDEN_CALLS: readonly { name: string; why: string }[] = [
  { name: "execve", why: "running another program" },
  { name: "execveat", why: "the same" },
  { name: "ptrace", why: "reading or steering other processes" },
  { name: "process_vm_readv", why: "reading another process's memory" },
  { name: "process_vm_writev", why: "writing another process's memory" },
  { name: "pidfd_getfd", why: "stealing another process's descriptors" },
  { name: "kcmp", why: "probing other processes" },
  { name: "mount", why: "changing the filesystem view" },
  { name: "umount2", why: "the same" },
  { name: "pivot_root", why: "the same" },
  { name: "chroot", why: "the same" },
  { name: "open_tree", why: "the new mount API" },
  { name: "move_mount", why: "the same" },
  { name: "fsopen", why: "the same" },
  { name: "fsmount", why: "the same" },
  { name: "fsconfig", why: "the same" },
  { name: "fspick", why: "the same" },
  { name: "mount_setattr", why: "the same" },
  { name: "unshare", why: "new namespaces" },
  { name: "setns", why: "entering other namespaces" },
  { name: "setuid", why: "identity changes (the launcher dropped privileges before exec)" },
  { name: "setgid", why: "the same" },
  { name: "setreuid", why: "the same" },
  { name: "setregid", why: "the same" },
  { name: "setresuid", why: "the same" },
  { name: "setresgid", why: "the same" },
  { name: "setfsuid", why: "the same" },
  { name: "setfsgid", why: "the same" },
  { name: "setgroups", why: "the same" },
  { name: "capset", why: "the same" },
  { name: "init_module", why: "loading kernel code" },
  { name: "finit_module", why: "the same" },
  { name: "delete_module", why: "unloading kernel code" },
  { name: "kexec_load", why: "replacing the kernel" },
  { name: "kexec_file_load", why: "the same" },
  { name: "bpf", why: "loading programs into the kernel" },
  { name: "perf_event_open", why: "a large kernel attack surface, host-wide tracing" },
  { name: "keyctl", why: "the kernel keyrings" },
  { name: "add_key", why: "the same" },
  { name: "request_key", why: "the same" },
  { name: "reboot", why: "the host's power" },
  { name: "swapon", why: "host memory configuration" },
  { name: "swapoff", why: "the same" },
  { name: "iopl", why: "direct port I/O on the host" },
  { name: "ioperm", why: "the same" },
  { name: "open_by_handle_at", why: "opening files around path permissions" },
  { name: "settimeofday", why: "the host's clock" },
  { name: "clock_settime", why: "the same" },
  { name: "clock_adjtime", why: "the same" },
  { name: "adjtimex", why: "the same" },
  { name: "sethostname", why: "the host's names" },
  { name: "setdomainname", why: "the same" },
  { name: "syslog", why: "the kernel log" },
  { name: "acct", why: "process accounting" },
  { name: "quotactl", why: "filesystem quotas" },
  { name: "fanotify_init", why: "watching the host's filesystems" },
];
