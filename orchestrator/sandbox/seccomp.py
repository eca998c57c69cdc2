"""The seccomp deny-list as a classic BPF program: bytes the exec shim loads before ``exec``.

Owns: ``DENIED`` (the system calls a sandboxed process may not make, by name), the per-architecture
syscall numbers, and ``program``, which assembles the filter. A denied call fails with ``EPERM``
(the process lives on, as under a container runtime's default profile); ``clone`` asking for a new
namespace fails with ``EPERM`` too; ``clone3`` fails with ``ENOSYS``, because a filter cannot read
its flags (they are behind a pointer) and the C library then falls back to ``clone``. A call made
through another architecture's entry (the 32-bit ``int 0x80`` on x86-64, x32) fails with ``EPERM``,
so the list cannot be bypassed. Pure: must not import ``os`` or ``ctypes``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

#: What the default profile denies and why, in the manner of the container runtimes' default.
DENIED: Mapping[str, str] = {
    "ptrace": "inspect or control another process",
    "process_vm_readv": "read another process's memory",
    "process_vm_writev": "write another process's memory",
    "pidfd_getfd": "steal another process's descriptors",
    "mount": "change the mount table",
    "umount2": "change the mount table",
    "mount_setattr": "change the mount table",
    "open_tree": "change the mount table",
    "move_mount": "change the mount table",
    "fsopen": "change the mount table",
    "fsconfig": "change the mount table",
    "fsmount": "change the mount table",
    "fspick": "change the mount table",
    "pivot_root": "change the root",
    "chroot": "change the root",
    "unshare": "enter new namespaces (user namespaces give root inside)",
    "setns": "join other namespaces",
    "kexec_load": "replace the kernel",
    "kexec_file_load": "replace the kernel",
    "init_module": "load kernel modules",
    "finit_module": "load kernel modules",
    "delete_module": "unload kernel modules",
    "create_module": "load kernel modules",
    "get_kernel_syms": "read kernel symbols",
    "query_module": "inspect kernel modules",
    "bpf": "load programs into the kernel",
    "perf_event_open": "observe the system",
    "userfaultfd": "a common exploit primitive",
    "io_uring_setup": "bypass this filter through io_uring",
    "io_uring_enter": "bypass this filter through io_uring",
    "io_uring_register": "bypass this filter through io_uring",
    "keyctl": "the kernel keyring is not namespaced",
    "add_key": "the kernel keyring is not namespaced",
    "request_key": "the kernel keyring is not namespaced",
    "reboot": "restart the host",
    "swapon": "change the host's swap",
    "swapoff": "change the host's swap",
    "acct": "switch process accounting",
    "settimeofday": "set the host's clock",
    "clock_settime": "set the host's clock",
    "clock_adjtime": "set the host's clock",
    "adjtimex": "set the host's clock",
    "sethostname": "rename the host",
    "setdomainname": "rename the host",
    "syslog": "read the kernel log",
    "quotactl": "change disk quotas",
    "quotactl_fd": "change disk quotas",
    "nfsservctl": "control the NFS server",
    "lookup_dcookie": "profile the kernel",
    "open_by_handle_at": "open files by handle, past directory permissions",
    "fanotify_init": "watch the whole filesystem",
    "iopl": "reach hardware ports",
    "ioperm": "reach hardware ports",
    "vhangup": "hang up the terminal",
    "uselib": "obsolete",
    "ustat": "obsolete",
    "sysfs": "obsolete",
    "_sysctl": "obsolete",
}

#: Audit architecture values (``AUDIT_ARCH_*``) and their syscall numbers for what is handled.
X86_64 = 0xC000003E
AARCH64 = 0xC00000B7

_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
    "mount": 165, "umount2": 166, "mount_setattr": 442, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pivot_root": 155,
    "chroot": 161, "unshare": 272, "setns": 308, "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176, "create_module": 174,
    "get_kernel_syms": 177, "query_module": 178, "bpf": 321, "perf_event_open": 298,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "keyctl": 250, "add_key": 248, "request_key": 249, "reboot": 169, "swapon": 167,
    "swapoff": 168, "acct": 163, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305,
    "adjtimex": 159, "sethostname": 170, "setdomainname": 171, "syslog": 103, "quotactl": 179,
    "quotactl_fd": 443, "nfsservctl": 180, "lookup_dcookie": 212, "open_by_handle_at": 304,
    "fanotify_init": 300, "iopl": 172, "ioperm": 173, "vhangup": 153, "uselib": 134,
    "ustat": 136, "sysfs": 139, "_sysctl": 156,
    "clone": 56, "clone3": 435,
}  # fmt: skip
_AARCH64 = {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
    "mount": 40, "umount2": 39, "mount_setattr": 442, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "pivot_root": 41,
    "chroot": 51, "unshare": 97, "setns": 268, "kexec_load": 104, "kexec_file_load": 294,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "bpf": 280,
    "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "keyctl": 219, "add_key": 217, "request_key": 218, "reboot": 142,
    "swapon": 224, "swapoff": 225, "acct": 89, "settimeofday": 170, "clock_settime": 112,
    "clock_adjtime": 266, "adjtimex": 171, "sethostname": 161, "setdomainname": 162,
    "syslog": 116, "quotactl": 60, "quotactl_fd": 443, "nfsservctl": 42, "lookup_dcookie": 18,
    "open_by_handle_at": 265, "fanotify_init": 262, "vhangup": 58,
    "clone": 220, "clone3": 435,
}  # fmt: skip
#: Syscall numbers by audit architecture (a name an architecture lacks cannot be called there).
NUMBERS: Mapping[int, Mapping[str, int]] = {X86_64: _X86_64, AARCH64: _AARCH64}
#: ``platform.machine()`` names of the architectures handled.
MACHINES: Mapping[str, int] = {"x86_64": X86_64, "amd64": X86_64, "aarch64": AARCH64}

#: ``clone`` flags that create a namespace (a user namespace above all).
NAMESPACE_FLAGS = (
    0x00020000  # CLONE_NEWNS
    | 0x02000000  # CLONE_NEWCGROUP
    | 0x04000000  # CLONE_NEWUTS
    | 0x08000000  # CLONE_NEWIPC
    | 0x10000000  # CLONE_NEWUSER
    | 0x20000000  # CLONE_NEWPID
    | 0x40000000  # CLONE_NEWNET
    | 0x00000080  # CLONE_NEWTIME
)
X32_SYSCALL_BIT = 0x40000000
EPERM = 1
ENOSYS = 38

# Classic BPF (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16


class UnsupportedArchitecture(ValueError):
    """No syscall table for this machine: the filter cannot be built."""


def program(arch: int) -> bytes:
    """The filter for audit architecture ``arch``: ``struct sock_filter`` entries, packed.

    Raises:
        UnsupportedArchitecture: ``arch`` is not in ``NUMBERS``.
    """
    try:
        numbers = NUMBERS[arch]
    except KeyError:
        raise UnsupportedArchitecture(f"no seccomp table for architecture {arch:#x}") from None
    denied = sorted({numbers[name] for name in DENIED if name in numbers})
    # Labels are resolved at the end; a jump is (label if true, label if false), None = next.
    code: list[tuple[int, str | None, str | None, int]] = [
        (_LD_W_ABS, None, None, _OFF_ARCH),
        (_JEQ_K, None, "deny", arch),
        (_LD_W_ABS, None, None, _OFF_NR),
    ]
    if arch == X86_64:
        code.append((_JGE_K, "deny", None, X32_SYSCALL_BIT))
    code += [(_JEQ_K, "deny", None, nr) for nr in denied]
    code += [
        (_JEQ_K, "clone", None, numbers["clone"]),
        (_JEQ_K, "enosys", "allow", numbers["clone3"]),
    ]
    labels: dict[str, int] = {}
    # Classic BPF jumps only forward: the clone check comes before the returns it jumps to.
    tail: list[tuple[str | None, tuple[int, str | None, str | None, int]]] = [
        ("clone", (_LD_W_ABS, None, None, _OFF_ARG0)),  # the flags' low 32 bits (little-endian)
        (None, (_JSET_K, "deny", "allow", NAMESPACE_FLAGS)),
        ("allow", (_RET_K, None, None, RET_ALLOW)),
        ("deny", (_RET_K, None, None, RET_ERRNO | EPERM)),
        ("enosys", (_RET_K, None, None, RET_ERRNO | ENOSYS)),
    ]
    for label, insn in tail:
        if label:
            labels[label] = len(code)
        code.append(insn)
    out = bytearray()
    for i, (op, jt, jf, k) in enumerate(code):
        out += struct.pack("<HBBI", op, _offset(i, jt, labels), _offset(i, jf, labels), k)
    return bytes(out)


def _offset(at: int, label: str | None, labels: Mapping[str, int]) -> int:
    if label is None:
        return 0
    jump = labels[label] - at - 1
    if not 0 <= jump <= 255:  # a classic BPF conditional jump has 8 bits
        raise AssertionError(f"jump of {jump} from {at} to {label}")
    return jump


def run(filter_program: bytes, arch: int, nr: int, arg0: int = 0) -> int:
    """Interpret the filter for one call, as the kernel would: the action it returns.

    For tests and ``validate --explain``; understands exactly the instructions ``program`` emits.
    """
    data = struct.pack("<iIQ6Q", nr, arch, 0, arg0 & 0xFFFFFFFFFFFFFFFF, 0, 0, 0, 0, 0)
    insns = [
        struct.unpack_from("<HBBI", filter_program, i) for i in range(0, len(filter_program), 8)
    ]
    pc, acc = 0, 0
    while True:
        op, jt, jf, k = insns[pc]
        if op == _LD_W_ABS:
            (acc,) = struct.unpack_from("<I", data, k)
            pc += 1
        elif op == _RET_K:
            return int(k)
        else:
            taken = {_JEQ_K: acc == k, _JGE_K: acc >= k, _JSET_K: bool(acc & k)}[op]
            pc += 1 + (jt if taken else jf)
