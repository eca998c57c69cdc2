"""The seccomp filter program: its syscall numbers against the kernel's headers, and what it returns
for each call, run through an interpreter of the instructions it emits."""

from __future__ import annotations

import os
import re

import pytest

from orchestrator.sandbox import seccomp
from orchestrator.sandbox.seccomp import (
    AARCH64,
    DENIED,
    ENOSYS,
    EPERM,
    NUMBERS,
    RET_ALLOW,
    RET_ERRNO,
    X86_64,
    UnsupportedArchitecture,
    program,
    run,
)

HEADERS = {
    X86_64: ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", r"#define __NR_(\w+)\s+(\d+)"),
    AARCH64: ("/usr/include/asm-generic/unistd.h", r"#define __NR(?:3264)?_(\w+)\s+(\d+)"),
}
CLONE_NEWUSER = 0x10000000
CLONE_THREAD_FLAGS = 0x003D0F00  # what pthread_create passes to clone: no namespace flag


@pytest.mark.parametrize("arch", [X86_64, AARCH64])
def test_the_numbers_are_the_kernel_s(arch: int) -> None:
    """Every number in the table is the one the kernel headers give that name."""
    path, pattern = HEADERS[arch]
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed (linux-libc-dev)")
    with open(path, encoding="ascii") as fh:
        headers = {m[1]: int(m[2]) for m in re.finditer(pattern, fh.read())}
    assert {n: headers.get(n) for n in NUMBERS[arch]} == dict(NUMBERS[arch])


@pytest.mark.parametrize("arch", [X86_64, AARCH64])
def test_every_denied_call_fails_with_eperm_and_others_pass(arch: int) -> None:
    code = program(arch)
    for name in DENIED:
        if name in NUMBERS[arch]:
            assert RET_ERRNO | EPERM == run(code, arch, NUMBERS[arch][name]), name
    for nr in (0, 1, 2, 3, 9, 59, 60, 231):  # read, write, open(at), close, mmap, execve, exit...
        if nr not in NUMBERS[arch].values():
            assert RET_ALLOW == run(code, arch, nr), nr


def test_clone_is_denied_only_for_new_namespaces_and_clone3_falls_back() -> None:
    code = program(X86_64)
    clone = NUMBERS[X86_64]["clone"]
    assert RET_ALLOW == run(code, X86_64, clone, CLONE_THREAD_FLAGS)
    assert RET_ERRNO | EPERM == run(code, X86_64, clone, CLONE_NEWUSER | 0x11)
    for flag in (0x00020000, 0x40000000, 0x20000000, 0x00000080):  # NEWNS, NEWNET, NEWPID, NEWTIME
        assert RET_ERRNO | EPERM == run(code, X86_64, clone, flag)
    # The C library tries clone3 first and falls back to clone on ENOSYS.
    assert RET_ERRNO | ENOSYS == run(code, X86_64, NUMBERS[X86_64]["clone3"])


def test_another_architecture_s_entry_and_x32_are_denied() -> None:
    """A 32-bit int 0x80 call would number ptrace 26: the filter refuses any foreign audit
    architecture, and x32 numbers, rather than let them through."""
    code = program(X86_64)
    i386 = 0x40000003
    assert RET_ERRNO | EPERM == run(code, i386, 26)
    assert RET_ERRNO | EPERM == run(code, X86_64, 0x40000000 | 101)


def test_an_unknown_architecture_cannot_get_a_filter() -> None:
    with pytest.raises(UnsupportedArchitecture):
        program(0xDEADBEEF)


def test_every_jump_fits_and_the_program_is_whole_instructions() -> None:
    for arch in NUMBERS:
        code = program(arch)
        assert 0 == len(code) % 8
        assert len(code) // 8 < 4096  # BPF_MAXINSNS
    assert seccomp.MACHINES["x86_64"] == X86_64
