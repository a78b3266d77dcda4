"""Owner names and the liveness verdict on them (`scheduler.process_identity`): live processes
are alive, dead or reaped or zombie or pid-reused ones are dead, and anything that cannot be
judged (old names, other hosts, another boot, no /proc) is left to the heartbeat rule."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.heartbeat import process_owner_id
from scheduler.process_identity import (
    NO_NAMESPACE,
    Liveness,
    LivenessJudge,
    OwnerName,
    ProcessMark,
    owner_name,
    parse_owner,
    read_mark,
)

HOST = socket.gethostname()
linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs a Linux /proc")


def named(pid: int, mark: ProcessMark | None, host: str = HOST) -> str:
    return str(OwnerName(host, pid, "0badf00d", mark))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def fake_proc(root: Path, *, boot_id: str, pids: dict[int, str]) -> Path:
    """A /proc with a boot id and `pid -> stat line` (and a pid namespace for each)."""
    (root / "sys/kernel/random").mkdir(parents=True)
    (root / "sys/kernel/random/boot_id").write_text(boot_id + "\n")
    for pid, stat in pids.items():
        (root / str(pid) / "ns").mkdir(parents=True)
        (root / str(pid) / "stat").write_text(stat)
        os.symlink("pid:[4026531836]", root / str(pid) / "ns/pid")
    return root


def stat_line(pid: int, comm: str, state: str, start: int) -> str:
    # Fields 3.. after the command name; field 22 (start time) is the 20th of them.
    after = [state, *["0"] * 18, str(start), "0", "0"]
    return f"{pid} ({comm}) {' '.join(after)}\n"


# -- names ---------------------------------------------------------------------------------------


def test_process_identity_owner_name_round_trips() -> None:
    name = parse_owner(process_owner_id())
    assert name is not None
    assert (name.host, name.pid) == (HOST, os.getpid())
    assert name.mark == read_mark()
    assert str(name) != process_owner_id()  # a new suffix each time: two services, two owners


def test_process_identity_old_names_parse_without_a_mark() -> None:
    assert parse_owner("web-1:4242:a1b2c3d4") == OwnerName("web-1", 4242, "a1b2c3d4")
    assert parse_owner("web-1.example.com:7:ffff0000") == OwnerName(
        "web-1.example.com", 7, "ffff0000"
    )
    for garbage in ("", "nohost", ":12:abcd", "web-1:pid:abcd", "web-1:12:ab:cd:ef:gh"):
        name = parse_owner(garbage)
        assert name is None or name.mark is None


def test_process_identity_new_names_keep_the_old_prefix() -> None:
    mark = ProcessMark("1d9838a7-f828-495c-806b-ed28cc98776c", 3374312, "4026531836")
    name = OwnerName("web-1", 4242, "a1b2c3d4", mark)
    assert str(name).startswith("web-1:4242:a1b2c3d4:")
    assert parse_owner(str(name)) == name
    unknown_ns = OwnerName("web-1", 1, "a1b2c3d4", ProcessMark(mark.boot_id, 5, NO_NAMESPACE))
    assert parse_owner(str(unknown_ns)) == unknown_ns


def test_process_identity_no_proc_gives_an_old_name(tmp_path: Path) -> None:
    assert read_mark(proc=tmp_path) is None
    name = parse_owner(owner_name(proc=tmp_path))
    assert name is not None and name.mark is None and name.pid == os.getpid()


def test_process_identity_stat_with_an_awkward_command_name(tmp_path: Path) -> None:
    boot = "0f0f0f0f-0000-4000-8000-000000000001"
    proc = fake_proc(tmp_path, boot_id=boot, pids={77: stat_line(77, "a) (b c) S", "S", 9876)})
    assert read_mark(77, proc) == ProcessMark(boot, 9876, "4026531836")


# -- verdicts ------------------------------------------------------------------------------------


@linux_only
def test_process_identity_this_process_is_alive() -> None:
    judge = LivenessJudge.of_this_process()
    assert judge.judge(process_owner_id()) is Liveness.ALIVE


@linux_only
def test_process_identity_child_alive_then_dead(sleeper: subprocess.Popen[bytes]) -> None:
    judge = LivenessJudge.of_this_process()
    owner = named(sleeper.pid, read_mark(sleeper.pid))
    assert judge.judge(owner) is Liveness.ALIVE
    sleeper.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 30
    # Killed but not reaped yet: a zombie, already dead.
    while judge.judge(owner) is not Liveness.DEAD:
        assert time.monotonic() < deadline, "a killed child still judged alive"
        time.sleep(0.01)
    sleeper.wait()
    assert judge.judge(owner) is Liveness.DEAD


@linux_only
def test_process_identity_pid_reused_is_dead() -> None:
    judge = LivenessJudge.of_this_process()
    mine = read_mark()
    assert mine is not None
    # Our own pid under an earlier start time: the process named there died, the pid was reused
    # (a container restarted in place gives its new process the dead one's pid).
    earlier = ProcessMark(mine.boot_id, mine.start_ticks - 1, mine.pid_ns)
    assert judge.judge(named(os.getpid(), earlier)) is Liveness.DEAD


@linux_only
def test_process_identity_what_cannot_be_judged(sleeper: subprocess.Popen[bytes]) -> None:
    judge = LivenessJudge.of_this_process()
    mark = read_mark(sleeper.pid)
    assert mark is not None
    sleeper.kill()
    sleeper.wait()
    dead = named(sleeper.pid, mark)
    assert judge.judge(dead) is Liveness.DEAD
    # The same dead process, named by an old app (no mark), on another host, in another boot.
    assert judge.judge(f"{HOST}:{sleeper.pid}:0badf00d") is Liveness.UNKNOWN
    assert judge.judge(named(sleeper.pid, mark, host=f"not-{HOST}")) is Liveness.UNKNOWN
    other_boot = ProcessMark("00000000-0000-4000-8000-000000000000", 1, mark.pid_ns)
    assert judge.judge(named(sleeper.pid, other_boot)) is Liveness.UNKNOWN
    assert judge.judge(None) is Liveness.UNKNOWN
    assert judge.judge("garbage") is Liveness.UNKNOWN
    # Where this process has no /proc, nothing is judged.
    blind = LivenessJudge(HOST, None)
    assert blind.judge(dead) is Liveness.UNKNOWN


@linux_only
def test_process_identity_other_pid_namespace_is_out_of_sight() -> None:
    judge = LivenessJudge.of_this_process()
    mine = read_mark()
    assert mine is not None
    # Alive and well in our namespace, but named in another: /proc cannot see it there.
    before = ProcessMark(mine.boot_id, mine.start_ticks - 1, "1")
    assert judge.judge(named(os.getpid(), before)) is Liveness.OUT_OF_SIGHT
    unknown_ns = ProcessMark(mine.boot_id, mine.start_ticks - 1, NO_NAMESPACE)
    assert judge.judge(named(os.getpid(), unknown_ns)) is Liveness.OUT_OF_SIGHT
    # Started after us: no predecessor of ours, whatever it is.
    after = ProcessMark(mine.boot_id, mine.start_ticks + 1, "1")
    assert judge.judge(named(os.getpid(), after)) is Liveness.UNKNOWN


def test_process_identity_judged_from_a_fake_proc(tmp_path: Path) -> None:
    boot = "0f0f0f0f-0000-4000-8000-000000000001"
    proc = fake_proc(
        tmp_path,
        boot_id=boot,
        pids={
            1: stat_line(1, "python", "S", 500),  # us
            40: stat_line(40, "python -m app", "R", 400),  # alive
            41: stat_line(41, "python", "Z", 401),  # killed, not reaped
            42: stat_line(42, "sh", "S", 999),  # a later process that got pid 42
        },
    )
    judge = LivenessJudge("box", read_mark(1, proc), proc)
    ns = "4026531836"
    assert judge.judge(named(40, ProcessMark(boot, 400, ns), "box")) is Liveness.ALIVE
    assert judge.judge(named(41, ProcessMark(boot, 401, ns), "box")) is Liveness.DEAD
    assert judge.judge(named(42, ProcessMark(boot, 402, ns), "box")) is Liveness.DEAD
    assert judge.judge(named(43, ProcessMark(boot, 403, ns), "box")) is Liveness.DEAD
