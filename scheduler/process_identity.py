"""Who a process is, and whether it is still alive as far as this machine can tell: the owner
names stored in `backfill_job_runs.owner`, and the verdict a process gives on the owner of a
running run (dead: resume its runs at once; alive, or cannot tell: the heartbeat rule decides).
Imports nothing of ours.

An owner name is `host:pid:suffix:boot_id:start:pid_ns`. A pid alone is no identity: pids are
reused, and a container restarted in place often gives its new process the very pid of the dead
one. The kernel's boot id and the process's start time (`/proc/<pid>/stat` field 22, clock ticks
after boot) name one process for the life of the machine; the pid namespace says whether our
`/proc` can see it at all. Names written before (`host:pid:suffix`) stay valid and are never
judged: the heartbeat rule applies to them, as to every owner on another host, after a reboot
(or on another machine answering to the same host name) and where there is no `/proc`.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
NO_NAMESPACE = "-"  # the pid namespace could not be read

_BOOT_ID = re.compile(r"[0-9a-f][0-9a-f-]{7,63}")
_NAMESPACE_LINK = re.compile(r"pid:\[(\d+)\]")


class Liveness(enum.Enum):
    ALIVE = "alive"  # the owner's process runs (it may still stall: the heartbeat rule stays)
    DEAD = "dead"  # gone: its pid is free, taken by a later process, or a zombie
    # It lived on this machine since boot, started before us, in a pid namespace our /proc does
    # not show: a container restarted in place (dead) or a sibling container given the same
    # host name (alive). Only a process that has just started may take it for dead.
    OUT_OF_SIGHT = "out_of_sight"
    UNKNOWN = "unknown"  # cannot tell: the heartbeat rule decides


@dataclass(frozen=True, slots=True)
class ProcessMark:
    """What tells one process from every other one on a machine (with the pid)."""

    boot_id: str  # /proc/sys/kernel/random/boot_id: new at every boot
    start_ticks: int  # /proc/<pid>/stat field 22: when the process started, after boot
    pid_ns: str  # the inode of its pid namespace, or NO_NAMESPACE


@dataclass(frozen=True, slots=True)
class OwnerName:
    """An owner name, parsed. `mark` is None for a name of the old form `host:pid:suffix`."""

    host: str
    pid: int
    suffix: str
    mark: ProcessMark | None = None

    def __str__(self) -> str:
        base = f"{self.host}:{self.pid}:{self.suffix}"
        if self.mark is None:
            return base
        return f"{base}:{self.mark.boot_id}:{self.mark.start_ticks}:{self.mark.pid_ns}"


def parse_owner(owner: str) -> OwnerName | None:
    """The parts of an owner name of either form; None for anything else."""
    parts = owner.rsplit(":", 5)
    if len(parts) == 6:
        host, pid, suffix, boot_id, start, pid_ns = parts
        if (
            host
            and pid.isdigit()
            and start.isdigit()
            and _BOOT_ID.fullmatch(boot_id)
            and (pid_ns.isdigit() or pid_ns == NO_NAMESPACE)
        ):
            return OwnerName(host, int(pid), suffix, ProcessMark(boot_id, int(start), pid_ns))
    parts = owner.rsplit(":", 2)
    if len(parts) == 3 and parts[0] and parts[1].isdigit():
        return OwnerName(parts[0], int(parts[1]), parts[2])
    return None


def _stat(proc: Path, pid: int | str) -> tuple[str, int]:
    """(state, start ticks) from `/proc/<pid>/stat`. The command name (field 2) is in
    parentheses and may hold spaces and parentheses itself: fields are counted after the last
    ')', where field 3 (the state) comes first."""
    text = (proc / str(pid) / "stat").read_text()
    fields = text[text.rindex(")") + 1 :].split()
    return fields[0], int(fields[19])


def read_mark(pid: int | str = "self", proc: Path = PROC) -> ProcessMark | None:
    """The mark of process `pid` (this one by default); None where `/proc` cannot tell."""
    try:
        boot_id = (proc / "sys/kernel/random/boot_id").read_text().strip()
        _state, start = _stat(proc, pid)
    except (OSError, ValueError, IndexError):
        return None
    if not _BOOT_ID.fullmatch(boot_id):
        return None
    try:
        found = _NAMESPACE_LINK.fullmatch(os.readlink(proc / str(pid) / "ns/pid"))
    except OSError:
        found = None
    return ProcessMark(boot_id, start, found.group(1) if found else NO_NAMESPACE)


def owner_name(proc: Path = PROC) -> str:
    """A new owner name for this process (and service instance): a random suffix makes two
    services in one process two owners. The old form where `/proc` cannot tell."""
    name = OwnerName(socket.gethostname(), os.getpid(), secrets.token_hex(4), read_mark(proc=proc))
    return str(name)


class LivenessJudge:
    """Judges owners from where this process stands: its host name and its own mark."""

    def __init__(self, host: str, here: ProcessMark | None, proc: Path = PROC) -> None:
        self.host = host
        self.here = here
        self._proc = proc

    @classmethod
    def of_this_process(cls, proc: Path = PROC) -> LivenessJudge:
        return cls(socket.gethostname(), read_mark(proc=proc), proc)

    def judge(self, owner: str | None) -> Liveness:
        name = None if owner is None else parse_owner(owner)
        here = self.here
        if name is None or name.mark is None or name.host != self.host or here is None:
            return Liveness.UNKNOWN
        mark = name.mark
        if mark.boot_id != here.boot_id:
            # Rebooted since, or another machine under the same host name: the heartbeat rule.
            return Liveness.UNKNOWN
        if mark.pid_ns == NO_NAMESPACE or mark.pid_ns != here.pid_ns:
            if mark.start_ticks < here.start_ticks:
                return Liveness.OUT_OF_SIGHT
            return Liveness.UNKNOWN  # it started after us: surely no predecessor of ours
        try:
            state, start = _stat(self._proc, name.pid)
        except (FileNotFoundError, ProcessLookupError):
            return Liveness.DEAD  # no such pid (any more)
        except (OSError, ValueError, IndexError):
            return Liveness.UNKNOWN
        if start != mark.start_ticks or state in ("Z", "X"):
            return Liveness.DEAD  # the pid went to a later process, or it died unreaped
        return Liveness.ALIVE

    def gone(self, owner: str | None, *, first_look: bool) -> bool:
        """Whether `owner`, a process of this host, is known to be dead, so what it held may be
        taken at once. One out of our sight (in a pid namespace our /proc does not show) counts
        as dead on our first look only: it is then the process our container ran before it was
        restarted in place, unless two live containers on one machine share a host name
        (Docker and Kubernetes give each its own). Later, it may be such a sibling that started
        since, and the heartbeat (or lease) rule decides."""
        verdict = self.judge(owner)
        return verdict is Liveness.DEAD or (verdict is Liveness.OUT_OF_SIGHT and first_look)


__all__ = [
    "NO_NAMESPACE",
    "PROC",
    "Liveness",
    "LivenessJudge",
    "OwnerName",
    "ProcessMark",
    "owner_name",
    "parse_owner",
    "read_mark",
]
