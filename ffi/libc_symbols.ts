/**
 * The libc symbols Denovisor calls, with their C signatures. This table is the only list
 * of native entry points in the project.
 *
 * @module
 */

/** Symbol table for `Deno.dlopen("libc.so.6", LIBC_SYMBOLS)`. */
export const LIBC_SYMBOLS = {
  /** int open(const char *path, int flags, mode_t mode) */
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /** int dup2(int oldfd, int newfd) */
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  /** int ioctl(int fd, unsigned long request, void *arg) */
  ioctl: { parameters: ["i32", "u64", "pointer"], result: "i32" },
  /** int ioctl(int fd, unsigned long request, unsigned long arg): the by-value form */
  ioctl_value: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  /** The same, off-thread: a vCPU's KVM_RUN that must not block the calling thread */
  ioctl_value_off_thread: {
    name: "ioctl",
    parameters: ["i32", "u64", "u64"],
    result: "i32",
    nonblocking: true,
  },
  /** void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset) */
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  /** int munmap(void *addr, size_t len) */
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  /** int madvise(void *addr, size_t len, int advice) */
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  /** int eventfd(unsigned int initval, int flags) */
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count) */
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  /** ssize_t pread64(int fd, void *buf, size_t count, off_t offset) */
  pread: { name: "pread64", parameters: ["i32", "pointer", "usize", "i64"], result: "isize" },
  /** ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) */
  pwrite: { name: "pwrite64", parameters: ["i32", "pointer", "usize", "i64"], result: "isize" },
  /** ssize_t preadv(int fd, const struct iovec *iov, int iovcnt, off_t offset) */
  preadv: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  /** ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) */
  pwritev: { parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  /** ssize_t readv(int fd, const struct iovec *iov, int iovcnt) */
  readv: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** ssize_t writev(int fd, const struct iovec *iov, int iovcnt) */
  writev: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** int fsync(int fd) */
  fsync: { parameters: ["i32"], result: "i32" },
  /** int fdatasync(int fd) */
  fdatasync: { parameters: ["i32"], result: "i32" },
  /** int fallocate(int fd, int mode, off_t offset, off_t len) */
  fallocate: { parameters: ["i32", "i32", "i64", "i64"], result: "i32" },
  /** off_t lseek(int fd, off_t offset, int whence) */
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  /** int ftruncate(int fd, off_t length) */
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  /** int fcntl(int fd, int cmd, void *arg): the struct flock form for OFD locks */
  fcntl_lock: { name: "fcntl", parameters: ["i32", "i32", "buffer"], result: "i32" },
  /** int fcntl(int fd, int cmd, long arg): the integer form (F_GETFL, F_SETFL) */
  fcntl_int: { name: "fcntl", parameters: ["i32", "i32", "i64"], result: "i32" },
  /** int fstat(int fd, struct stat *buf) */
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  /** int fstatfs(int fd, struct statfs *buf) */
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  /** int renameat2(int olddirfd, const char *old, int newdirfd, const char *new, unsigned int flags) */
  renameat2: { parameters: ["i32", "buffer", "i32", "buffer", "u32"], result: "i32" },
  /** ssize_t getrandom(void *buf, size_t buflen, unsigned int flags) */
  getrandom: { parameters: ["buffer", "usize", "u32"], result: "isize" },
  /** int socket(int domain, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int bind(int fd, const struct sockaddr *addr, socklen_t len) */
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  /** ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *addr, socklen_t addrlen) */
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "isize" },
  /** unsigned int if_nametoindex(const char *ifname) */
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout) */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** int epoll_create1(int flags) */
  epoll_create1: { parameters: ["i32"], result: "i32" },
  /** int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event) */
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout), off-thread */
  epoll_wait: {
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  /** pid_t getpid(void) */
  getpid: { parameters: [], result: "i32" },
  /** pid_t gettid(void) */
  gettid: { parameters: [], result: "i32" },
  /** int tgkill(pid_t tgid, pid_t tid, int sig) */
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /** int *__errno_location(void): errno of the calling thread */
  __errno_location: { parameters: [], result: "pointer" },
  /** int socketpair(int domain, int type, int protocol, int sv[2]) */
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) */
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** ssize_t recvmsg(int fd, struct msghdr *msg, int flags) */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  /** int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5) */
  prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
  /** long syscall(long number, long a1, long a2, void *a3): the 3-argument form (seccomp(2)) */
  syscall3: { name: "syscall", parameters: ["i64", "i64", "i64", "pointer"], result: "i64" },
  /** char *strerror(int errnum) */
  strerror: { parameters: ["i32"], result: "pointer" },
} as const satisfies Deno.ForeignLibraryInterface;

/** open(2) flags. */
export const O_RDONLY = 0;
export const O_RDWR = 2;
export const O_CLOEXEC = 0o2000000;
export const O_NONBLOCK = 0o4000;

/** mmap(2) protection and flags. */
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
/** The value mmap(2) returns on failure, `(void *) -1`. */
export const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** madvise(2) advice. */
export const MADV_DONTNEED = 4;
export const MADV_MERGEABLE = 12;
export const MADV_DONTDUMP = 16;

/** eventfd(2) flags. */
export const EFD_CLOEXEC = 0o2000000;
export const EFD_NONBLOCK = 0o4000;

/** fallocate(2) modes. */
export const FALLOC_FL_KEEP_SIZE = 0x01;
export const FALLOC_FL_PUNCH_HOLE = 0x02;
export const FALLOC_FL_ZERO_RANGE = 0x10;

/** lseek(2) whence values that find data and holes in sparse files. */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** open(2) flags for disks. */
export const O_CREAT = 0o100;
export const O_DIRECT = 0o40000;

/** socket(2). */
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_PACKET = 17;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
/** ETH_P_ALL in network byte order, as socket(2) and sockaddr_ll want it. */
export const ETH_P_ALL_BE = 0x0300;

/** epoll. */
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLLIN = 0x001;

/** The signal used to kick a vCPU thread out of KVM_RUN (not SIGUSR1: Deno, like Node, opens
 * its inspector on SIGUSR1). */
export const SIGUSR2 = 12;
