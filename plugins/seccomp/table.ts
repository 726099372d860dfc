// The seccomp policy, in one table: which system calls the guest may not make, what it gets
// instead, and why. Everything not listed is allowed. The baseline follows Flatpak's default
// policy (`flatpak run` without --devel), written down here in our own words; README.md
// says where we differ and why. The syscall numbers per ABI are below the rules.

/** The ABIs a filter distinguishes: the host architecture's own, and x86's 32-bit one. */
export type Abi = "x86_64" | "i386" | "aarch64";

/**
 * What the caller gets. SUCCESS is SECCOMP_RET_ERRNO with errno 0: the call returns 0 and
 * does nothing.
 */
export type Verdict = "EPERM" | "ENOSYS" | "EAFNOSUPPORT" | "SUCCESS";

/** The errno of each verdict (the same numbers on x86 and arm64: asm-generic/errno). */
export const ERRNO: Record<Verdict, number> = { EPERM: 1, ENOSYS: 38, EAFNOSUPPORT: 97, SUCCESS: 0 };

/**
 * A condition on one argument, compared on its low 32 bits: every argument tested here is a
 * 32-bit `int`/`unsigned int` for the kernel (ioctl's request, personality, socket's family,
 * clone's flags), which ignores the high bits. Comparing 64 bits would let a caller slip
 * past with high bits set (CVE-2019-10063: Flatpak's TIOCSTI check, before its fix).
 */
export type ArgTest =
  | { arg: number; in: readonly number[] } // the verdict applies when the value is one of these
  | { arg: number; notIn: readonly number[] } // … when it is none of these
  | { arg: number; anyBit: number }; // … when it shares a bit with this mask

export interface Rule {
  /** Names as in the kernel's tables; a name an ABI lacks is skipped there. */
  syscalls: readonly string[];
  verdict: Verdict;
  /** Without a test, every call gets the verdict. */
  test?: ArgTest;
  /** The rule exists only under these options. */
  only?: { allowUserNamespaces?: boolean; fakeOwnership?: boolean };
  why: string;
}

const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const PER_LINUX = 0x0000;
const PER_LINUX32 = 0x0008;
const PERSONALITY_QUERY = 0xffffffff;
const AF_UNSPEC = 0;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
const CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;
/** unshare also takes CLONE_NEWTIME (0x80, which clone's flags use for the exit signal). */
const UNSHARE_NEW_ANY = CLONE_NEW_ANY | 0x80;

/**
 * The rules, in the order the filter tests them. Rules that look at an argument come first:
 * the kernel caches "always allowed" per syscall number and skips the filter for those, so
 * only calls named here run through it, and ioctl is by far the most frequent of them.
 */
export const RULES: readonly Rule[] = [
  // Rules that look at an argument.
  { syscalls: ["ioctl"], test: { arg: 1, in: [TIOCSTI, TIOCLINUX] }, verdict: "EPERM", why: "TIOCSTI pushes input into the terminal's queue and TIOCLINUX pastes on a virtual console: a guest could type commands into the user's shell (CVE-2017-5226, CVE-2023-28100)" },
  { syscalls: ["socket"], test: { arg: 0, notIn: [AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6, AF_NETLINK] }, verdict: "EAFNOSUPPORT", why: "only local, IP and netlink sockets: the other address families are rarely needed kernel code with a history of exploits; EAFNOSUPPORT is what a kernel without them says" },
  { syscalls: ["clone"], test: { arg: 0, anyBit: CLONE_NEW_ANY }, verdict: "EPERM", only: { allowUserNamespaces: false }, why: "no new namespaces: a new user namespace opens kernel code that needs privilege (CLONE_NEWUSER), and the others have no use in the guest" },
  { syscalls: ["unshare"], test: { arg: 0, anyBit: UNSHARE_NEW_ANY }, verdict: "EPERM", only: { allowUserNamespaces: false }, why: "no new namespaces (as clone); unsharing the file table or fs attributes stays allowed" },
  { syscalls: ["personality"], test: { arg: 0, notIn: [PER_LINUX, PER_LINUX32, PERSONALITY_QUERY] }, verdict: "EPERM", why: "only the Linux personalities and the query: others switch on emulations, and READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE weaken the process' protections" },

  // Always refused.
  { syscalls: ["clone3"], verdict: "ENOSYS", why: "its flags are in memory, which seccomp cannot read, so it cannot be checked for namespaces; ENOSYS makes glibc fall back to clone, which is checked" },
  { syscalls: ["setns"], verdict: "EPERM", only: { allowUserNamespaces: false }, why: "no joining other namespaces (the guest's tools have no use for it)" },
  { syscalls: ["keyctl", "add_key", "request_key"], verdict: "EPERM", why: "kernel keyrings are not namespaced: the guest would reach the user's keys on the host" },
  { syscalls: ["perf_event_open"], verdict: "EPERM", why: "performance counters expose kernel and other-process activity, and have had many exploits; profile from outside" },
  { syscalls: ["ptrace"], verdict: "EPERM", why: "no tracing or debugging inside the guest (Flatpak allows it only with --devel, which we do not have yet); on old kernels it also bypassed seccomp" },
  { syscalls: ["syslog"], verdict: "EPERM", why: "the kernel log leaks addresses and host activity (dmesg)" },
  { syscalls: ["uselib"], verdict: "EPERM", why: "the obsolete a.out library loader" },
  { syscalls: ["acct"], verdict: "EPERM", why: "process accounting is a host matter" },
  { syscalls: ["modify_ldt"], verdict: "EPERM", why: "16-bit segments are not needed, and the LDT has a history of information leaks" },
  { syscalls: ["quotactl", "quotactl_fd"], verdict: "EPERM", why: "disk quotas are a host matter, and reading them reveals other users' usage" },
  { syscalls: ["move_pages", "migrate_pages", "mbind", "get_mempolicy", "set_mempolicy", "set_mempolicy_home_node"], verdict: "EPERM", why: "NUMA placement: not needed by applications, and move_pages reveals another process' memory layout" },
  { syscalls: ["userfaultfd"], verdict: "EPERM", why: "user-space page fault handling is mostly used to widen kernel race windows in exploits" },
  { syscalls: ["bpf"], verdict: "EPERM", why: "eBPF programs run in the kernel: a large attack surface the guest does not need" },
  { syscalls: ["io_uring_setup", "io_uring_enter", "io_uring_register"], verdict: "ENOSYS", why: "io_uring's operations are not seen by seccomp (a socket made through it escapes the family check); ENOSYS is what programs expect of a kernel without it and they fall back" },
  { syscalls: ["mount", "umount", "umount2", "pivot_root", "chroot"], verdict: "EPERM", only: { allowUserNamespaces: false }, why: "the guest's file system view is set up before the filter is loaded and must not change under it (a nested sandbox, in its own user namespace, needs them)" },
  { syscalls: ["open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr"], verdict: "ENOSYS", why: "the new mount API, refused even to nested sandboxes (fsconfig was CVE-2022-0185, reachable from a user namespace); ENOSYS makes libmount fall back to mount(2) (CVE-2021-41133)" },
  { syscalls: ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module"], verdict: "EPERM", why: "loading kernels or modules is for the host (it needs privilege the guest lacks; refused before the kernel looks)" },
  { syscalls: ["open_by_handle_at"], verdict: "EPERM", why: "opens files by handle, bypassing the paths the sandbox controls (the 'shocker' container escape)" },

  // fim-root without subordinate ids: one uid and one gid are mapped, so a chown to any other
  // owner fails with EINVAL and package managers stop. The calls report success and change
  // nothing: the files stay owned by the user, as they would on the host in the end.
  { syscalls: ["chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32"], verdict: "SUCCESS", only: { fakeOwnership: true }, why: "ownership changes succeed without effect (only one uid and gid are mapped)" },
  // Likewise switching to another user, which package managers do to sandbox their downloads
  // (pacman's DownloadUser) and maintainer scripts do to build caches (man-db's setpriv): the
  // process stays root, which in this namespace holds no capabilities and is the user anyway.
  { syscalls: ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups", "setuid32", "setgid32", "setreuid32", "setregid32", "setresuid32", "setresgid32", "setfsuid32", "setfsgid32", "setgroups32"], verdict: "SUCCESS", only: { fakeOwnership: true }, why: "identity changes succeed without effect: the process stays root (the only mapped uid)" },
];

/**
 * System call numbers for the names the rules use; null where the ABI has no such call.
 * From the kernel's tables: arch/x86/entry/syscalls/syscall_64.tbl, syscall_32.tbl, and
 * include/uapi/asm-generic/unistd.h for aarch64 (checked against the host's headers by
 * test/unit/seccomp.test.ts).
 */
export const NUMBERS: Record<Abi, Record<string, number | null>> = {
  x86_64: {
    ioctl: 16, socket: 41, clone: 56, unshare: 272, personality: 135,
    clone3: 435, setns: 308,
    keyctl: 250, add_key: 248, request_key: 249,
    perf_event_open: 298, ptrace: 101, syslog: 103, uselib: 134, acct: 163, modify_ldt: 154,
    quotactl: 179, quotactl_fd: 443,
    move_pages: 279, migrate_pages: 256, mbind: 237, get_mempolicy: 239, set_mempolicy: 238, set_mempolicy_home_node: 450,
    userfaultfd: 323, bpf: 321,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
    mount: 165, umount: null, umount2: 166, pivot_root: 155, chroot: 161,
    open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
    kexec_load: 246, kexec_file_load: 320, init_module: 175, finit_module: 313, delete_module: 176,
    open_by_handle_at: 304,
    chown: 92, fchown: 93, lchown: 94, fchownat: 260, chown32: null, fchown32: null, lchown32: null,
    setuid: 105, setgid: 106, setreuid: 113, setregid: 114, setresuid: 117, setresgid: 119, setfsuid: 122, setfsgid: 123, setgroups: 116,
    setuid32: null, setgid32: null, setreuid32: null, setregid32: null, setresuid32: null, setresgid32: null, setfsuid32: null, setfsgid32: null, setgroups32: null,
  },
  i386: {
    ioctl: 54, socket: 359, clone: 120, unshare: 310, personality: 136,
    clone3: 435, setns: 346,
    keyctl: 288, add_key: 286, request_key: 287,
    perf_event_open: 336, ptrace: 26, syslog: 103, uselib: 86, acct: 51, modify_ldt: 123,
    quotactl: 131, quotactl_fd: 443,
    move_pages: 317, migrate_pages: 294, mbind: 274, get_mempolicy: 275, set_mempolicy: 276, set_mempolicy_home_node: 450,
    userfaultfd: 374, bpf: 357,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
    mount: 21, umount: 22, umount2: 52, pivot_root: 217, chroot: 61,
    open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
    kexec_load: 283, kexec_file_load: null, init_module: 128, finit_module: 350, delete_module: 129,
    open_by_handle_at: 342,
    chown: 182, fchown: 95, lchown: 16, fchownat: 298, chown32: 212, fchown32: 207, lchown32: 198,
    setuid: 23, setgid: 46, setreuid: 70, setregid: 71, setresuid: 164, setresgid: 170, setfsuid: 138, setfsgid: 139, setgroups: 81,
    setuid32: 213, setgid32: 214, setreuid32: 203, setregid32: 204, setresuid32: 208, setresgid32: 210, setfsuid32: 215, setfsgid32: 216, setgroups32: 206,
  },
  aarch64: {
    ioctl: 29, socket: 198, clone: 220, unshare: 97, personality: 92,
    clone3: 435, setns: 268,
    keyctl: 219, add_key: 217, request_key: 218,
    perf_event_open: 241, ptrace: 117, syslog: 116, uselib: null, acct: 89, modify_ldt: null,
    quotactl: 60, quotactl_fd: 443,
    move_pages: 239, migrate_pages: 238, mbind: 235, get_mempolicy: 236, set_mempolicy: 237, set_mempolicy_home_node: 450,
    userfaultfd: 282, bpf: 280,
    io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427,
    mount: 40, umount: null, umount2: 39, pivot_root: 41, chroot: 51,
    open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433, mount_setattr: 442,
    kexec_load: 104, kexec_file_load: 294, init_module: 105, finit_module: 273, delete_module: 106,
    open_by_handle_at: 265,
    chown: null, fchown: 55, lchown: null, fchownat: 54, chown32: null, fchown32: null, lchown32: null,
    setuid: 146, setgid: 144, setreuid: 145, setregid: 143, setresuid: 147, setresgid: 149, setfsuid: 151, setfsgid: 152, setgroups: 159,
    setuid32: null, setgid32: null, setreuid32: null, setregid32: null, setresuid32: null, setresgid32: null, setfsuid32: null, setfsgid32: null, setgroups32: null,
  },
};

/**
 * The ABIs a filter for each host architecture accepts, native first. On x86_64 the 32-bit
 * ABI gets the same policy with its own numbers (32-bit programs such as Wine's keep
 * working); x32 and, on aarch64, 32-bit ARM are refused (README.md says why).
 */
export const ABIS: Record<"x86_64" | "aarch64", Abi[]> = { x86_64: ["x86_64", "i386"], aarch64: ["aarch64"] };

/** AUDIT_ARCH_* values (linux/audit.h), what `seccomp_data.arch` holds. */
export const AUDIT_ARCH: Record<Abi, number> = { x86_64: 0xc000003e, i386: 0x40000003, aarch64: 0xc00000b7 };

/** x32 system calls come with the x86_64 arch value and this bit set in the number. */
export const X32_SYSCALL_BIT = 0x40000000;
