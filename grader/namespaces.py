"""An OS sandbox for student code, entered by a freshly forked process: Linux namespaces.

`enter(policy)` turns the calling process (just forked from `grader.zygote`) into the
sandboxed process: its own PID, mount, network, IPC and UTS namespaces; a new root that
holds only what Python needs, read-only (the system's `/usr` and `/etc`, the interpreter,
site-packages, the course library and the grader without its hidden suites: no
`solutions/`, no submissions, no grades); a private `/tmp`; no network; limits on memory,
processes and file sizes; and, when the grader runs as root, an unprivileged uid of its own
(otherwise a user namespace maps the caller's uid, with every capability dropped). The
process becomes PID 1 of its namespace, so everything it starts dies with it.

Bubblewrap does the same from the command line, but it starts a new program each time:
the 5 s of importing JAX that a fork server saves would be paid for every exercise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import site
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 0x4000, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
DEVICES = ("null", "zero", "full", "random", "urandom")
NEW_ROOT = "/tmp"  # a mount point that exists everywhere: the new root is a tmpfs mounted there

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class SandboxUnavailable(RuntimeError):
    """This machine cannot give student code its own namespaces (see `probe`)."""


@dataclass(frozen=True)
class Policy:
    """What the sandboxed process may see and use."""

    readable: tuple[str, ...]  # bound read-only at the same path
    hidden: tuple[str, ...] = ()  # folders inside `readable` replaced by an empty one
    memory_mb: int = 4096  # address space
    max_processes: int = 512  # threads included (XLA starts dozens)
    tmp_mb: int = 512  # the private /tmp
    uid: int | None = None  # run as this unprivileged uid (needs root); None: a user namespace
    isolate: bool = True  # False: limits only, no namespaces (`--unsafe`, or a machine without them)
    writable_devices: tuple[str, ...] = field(default=DEVICES)


def default_policy(repo_root: Path, *, memory_mb: int, uid: int | None, extra_readable: tuple[str, ...] = ()
                   ) -> Policy:
    """Python, its packages, and the repository's `course/` and `grader/` (without `grader/hidden/`)."""
    prefix = Path(sys.prefix).resolve()
    readable = {"/usr", "/etc", str(Path(sys.base_prefix).resolve()), str(prefix), *extra_readable,
                str(repo_root / "course"), str(repo_root / "grader")}
    installed = [prefix, Path(sys.base_prefix).resolve(), Path(site.getuserbase()).resolve()]
    for entry in sys.path:  # packages installed elsewhere (user site); never a source checkout on the path,
        path = Path(entry or ".").resolve()  # which may hold some course's solutions
        if path.exists() and any(path.is_relative_to(place) for place in installed):
            readable.add(str(path))
    by_length = sorted(p for p in readable if Path(p).exists())
    kept = tuple(p for p in by_length if not any(p != q and Path(p).is_relative_to(q) for q in by_length))
    return Policy(kept, hidden=(str(repo_root / "grader" / "hidden"),), memory_mb=memory_mb, uid=uid)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


OLD_ROOT = "/.old-root"  # where the host's tree is while the new root is being furnished


def _bind(path: str, *, writable: bool = False, device: bool = False) -> None:
    """Bind the host's `path` at the same place in the new root, read-only unless `writable`."""
    source = OLD_ROOT + path
    if os.path.isdir(source):
        os.makedirs(path, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "a").close()
    _mount(source, path, None, MS_BIND | MS_REC)
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if device else MS_NODEV) | (0 if writable else MS_RDONLY)
    if os.statvfs(path).f_flag & os.ST_NOEXEC:  # a locked flag must be kept
        flags |= MS_NOEXEC
    _mount(None, path, None, flags)


def _tmpfs(path: str, size_mb: int, mode: str = "1777", *, read_only: bool = False) -> None:
    os.makedirs(path, exist_ok=True)
    _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | (MS_RDONLY if read_only else 0),
           f"size={size_mb}m,mode={mode}")


def _new_root(policy: Policy) -> None:
    """Pivot into an empty tmpfs (the host's tree moves to OLD_ROOT), furnish it, drop the host's tree."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host
    _tmpfs(NEW_ROOT, 16, "0755")
    os.makedirs(NEW_ROOT + OLD_ROOT)
    _check(_libc.syscall(SYS_PIVOT_ROOT, NEW_ROOT.encode(), (NEW_ROOT + OLD_ROOT).encode()), "pivot_root")
    os.chdir("/")
    for name in ("bin", "lib", "lib64", "sbin"):  # merged /usr: links; else the folders themselves
        if os.path.islink(f"{OLD_ROOT}/{name}"):
            os.symlink(os.readlink(f"{OLD_ROOT}/{name}"), f"/{name}")
        elif os.path.isdir(f"{OLD_ROOT}/{name}"):
            _bind(f"/{name}")
    # The private /tmp first: a readable path under the host's /tmp (a checkout or a virtual
    # environment there) is then bound inside it, not covered by it.
    _tmpfs("/tmp", policy.tmp_mb)
    for path in policy.readable:
        _bind(path)
    for path in policy.hidden:
        if os.path.isdir(path):
            _tmpfs(path, 1, "0755", read_only=True)
    os.makedirs("/dev", exist_ok=True)
    for device in policy.writable_devices:
        if os.path.exists(f"{OLD_ROOT}/dev/{device}"):
            _bind(f"/dev/{device}", writable=True, device=True)
    _tmpfs("/dev/shm", 64)
    os.makedirs("/proc", exist_ok=True)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _check(_libc.umount2(OLD_ROOT.encode(), MNT_DETACH), "umount the host's tree")
    os.rmdir(OLD_ROOT)
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def _drop_capabilities() -> None:
    """Clear every capability (in a user namespace, uid changes alone would keep them)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    _check(_libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def _limit(policy: Policy) -> None:
    memory = policy.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_NPROC, (policy.max_processes, policy.max_processes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (policy.tmp_mb * 1024 * 1024,) * 2)


def set_parent_death_signal() -> None:
    """Be killed when the parent process ends (the grader, for its fork server)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")


def enter(policy: Policy) -> None:
    """Make this (forked, single-threaded) process the sandboxed one; returns inside the sandbox.

    The caller's process stays outside as a small supervisor that waits for the sandboxed
    one and exits with its status, and never returns from here. Raises OSError (in the
    caller, before anything is entered) when the kernel refuses a namespace.
    """
    if not policy.isolate:
        set_parent_death_signal()
        _limit(policy)
        return
    outer_uid, outer_gid = os.getuid(), os.getgid()
    as_root = outer_uid == 0 and policy.uid is not None
    set_parent_death_signal()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    _check(_libc.unshare(flags | (0 if as_root else CLONE_NEWUSER)), "unshare")
    if not as_root:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"0 {outer_uid} 1")
        Path("/proc/self/gid_map").write_text(f"0 {outer_gid} 1")
    alive_read, alive_write = os.pipe()  # closes when this supervisor dies
    sandboxed = os.fork()
    if sandboxed != 0:
        os.close(alive_read)
        _, status = os.waitpid(sandboxed, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as a shell says
    os.close(alive_write)
    try:
        _new_root(policy)
        _limit(policy)
        if as_root:
            os.setgroups([])
            os.setresgid(policy.uid, policy.uid, policy.uid)
            os.setresuid(policy.uid, policy.uid, policy.uid)  # from root: every capability goes too
        else:
            _drop_capabilities()
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
        _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")
        set_parent_death_signal()  # setuid cleared it
        os.set_blocking(alive_read, False)
        try:
            if os.read(alive_read, 1) == b"":  # the supervisor is gone already
                os._exit(1)
        except BlockingIOError:
            pass
        os.close(alive_read)
    except BaseException as error:  # never run student code in a half-made sandbox
        os.write(2, f"grader sandbox: {error}\n".encode())
        os._exit(111)


def probe(policy: Policy) -> str | None:
    """None if `enter(policy)` works on this machine, else what is missing (tried in a throwaway child)."""
    if sys.platform != "linux" or SYS_PIVOT_ROOT is None:
        return f"Linux namespaces on x86_64 or aarch64 (this is {sys.platform}, {os.uname().machine})"
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            enter(policy)
            ok = not os.path.exists(policy.hidden[0] + "/.") or not os.listdir(policy.hidden[0])
            os.write(write_end, b"ok" if ok else b"the hidden suites were visible")
        except BaseException as error:
            os.write(write_end, str(error).encode()[:500])
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as channel:
        answer = channel.read().decode(errors="replace")
    os.waitpid(child, 0)
    if answer == "ok":
        return None
    return (f"Linux namespaces for an unprivileged sandbox ({answer or 'the sandbox could not start'}); "
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0) or run the grader as root")
