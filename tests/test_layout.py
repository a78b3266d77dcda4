"""The direction of imports (design.md's layout table) and the engine's one Slack gateway."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("app", "handlers", "blocks", "scheduler", "db", "fakeslack")
# package -> packages of ours it may import (itself always allowed)
ALLOWED = {
    "handlers": {"blocks", "scheduler", "db"},
    "blocks": set(),
    "scheduler": {"db", "blocks"},  # scheduler/backfill is narrower, below
    "db": set(),
    "fakeslack": set(),
}


# The one module of ours `blocks` may import beyond itself: the entities' plain frozen types
# (design.md: "nothing of ours but plain data types").
PLAIN_DATA = "db.records"


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def ours(name: str) -> str | None:
    top = name.split(".")[0]
    return top if top in OURS else None


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_layout_imports_follow_the_design(package: str) -> None:
    wrong = []
    for path in modules(package):
        for name in imports_of(path):
            top = ours(name)
            if package == "blocks" and name == PLAIN_DATA:
                continue
            if top and top != package and top not in ALLOWED[package]:
                wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert wrong == []


def test_layout_records_are_plain_data() -> None:
    """`db.records` is what `blocks` may see of `db`: the standard library only, no SQL."""
    path = REPO / "db" / "records.py"
    allowed = {"__future__", "dataclasses", "datetime", "typing"}
    assert {name.split(".")[0] for name in imports_of(path)} <= allowed


# Fields that make a class a copy of an entity: a run, a schedule, a run's progress.
ENTITY_FIELDS = {
    "Run": {"job_run_id", "status", "job_type"},
    "Schedule": {"schedule_id", "cron_expression", "days_to_backfill"},
    "Progress": {"channels_done", "channels_total", "messages_stored"},
}


def test_layout_one_type_per_entity() -> None:
    """Each entity has one type (`db.records`), returned by `db/` and rendered by `blocks/` as
    is: no other class of ours redeclares an entity's identifying fields (the ORM tables in
    `db/models.py` are the columns, not a type the app passes around)."""
    copies = []
    for package in ("app", "handlers", "blocks", "scheduler", "db"):
        for path in modules(package):
            if path.relative_to(REPO).as_posix() in ("db/records.py", "db/models.py"):
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                fields = {
                    item.target.id
                    for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                }
                copies += [
                    f"{path.relative_to(REPO)}: {node.name} copies {entity}"
                    for entity, marks in ENTITY_FIELDS.items()
                    if marks <= fields
                ]
    assert copies == []


def test_layout_engine_imports_only_db() -> None:
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("scheduler/backfill")
        for name in imports_of(path)
        if ours(name) and not name.startswith(("scheduler.backfill", "db"))
    ]
    assert wrong == []


def test_layout_blocks_and_db_do_no_slack_io() -> None:
    for package, banned in (
        ("blocks", ("slack_sdk.web", "aiohttp", "sqlalchemy", "chromadb")),
        ("db", ("slack_sdk", "slack_bolt")),
    ):
        for path in modules(package):
            for name in imports_of(path):
                assert not name.startswith(banned), f"{path.relative_to(REPO)} imports {name}"


def test_layout_only_the_gateway_talks_to_slack_in_the_engine() -> None:
    """Only `gateway.py` may hold a Slack client: every engine call is paced and retried there."""
    talkers = sorted(
        str(path.relative_to(REPO))
        for path in modules("scheduler/backfill")
        if any(name.startswith(("slack_sdk", "slack_bolt", "aiohttp")) for name in imports_of(path))
    )
    assert talkers == ["scheduler/backfill/gateway.py"]


# APScheduler 3's executor internals: a patch release may rename or drop any of them.
APSCHEDULER_PRIVATE = {
    "_do_submit_job",
    "_pending_futures",
    "_jobstore_alias",
    "_run_job_error",
    "_run_job_success",
    "run_coroutine_job",
    "run_job",
}


def test_layout_scheduler_uses_only_apschedulers_public_api() -> None:
    """No product module reaches into APScheduler's executors: no private member, no
    `run_coroutine_job`, no subclass of an APScheduler class (a job's fire time comes from the
    public EVENT_JOB_SUBMITTED)."""
    wrong = []
    for package in ("app", "handlers", "scheduler"):
        for path in modules(package):
            tree = ast.parse(path.read_text(), filename=str(path))
            from_apscheduler: set[str] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "apscheduler"
                ):
                    from_apscheduler |= {alias.asname or alias.name for alias in node.names}
                    wrong += [
                        f"{path.relative_to(REPO)} imports {alias.name}"
                        for alias in node.names
                        if alias.name in APSCHEDULER_PRIVATE or alias.name.startswith("_")
                    ]
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and node.attr in APSCHEDULER_PRIVATE:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno} uses .{node.attr}")
                elif isinstance(node, ast.ClassDef):
                    for base in node.bases:
                        name = ast.unparse(base)
                        if name.split(".")[0] in from_apscheduler or name.startswith("apscheduler"):
                            wrong.append(f"{path.relative_to(REPO)}: {node.name} subclasses {name}")
    assert wrong == []


# What `handlers/` may hold: listeners and their registration. Services (the Home publisher,
# request gating, the deferred-work runner) live in `scheduler/` or `app/`.
HANDLERS_BANNED_IMPORTS = ("aiohttp", "apscheduler", "sqlalchemy", "chromadb", "app")
LISTENER_KINDS = ("AsyncMiddleware", "Protocol", "Exception")


def _is_dataclass(node: ast.ClassDef) -> tuple[bool, bool]:
    """(is a dataclass, is frozen) from its decorator."""
    for decorator in node.decorator_list:
        call = decorator if isinstance(decorator, ast.Call) else None
        name = ast.unparse(call.func if call else decorator)
        if name.split(".")[-1] == "dataclass":
            frozen = call is not None and any(
                k.arg == "frozen" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in call.keywords
            )
            return True, frozen
    return False, False


def test_layout_handlers_only_register_and_run_listeners() -> None:
    """A class under `handlers/` is a Bolt middleware, a Protocol, an exception or a data type
    (public ones frozen); no handlers module imports the HTTP server, APScheduler, SQL, Chroma or
    `app/`, nor starts a task of its own (slow halves go through `Deps.after_ack`)."""
    wrong = []
    for path in modules("handlers"):
        where = path.relative_to(REPO)
        wrong += [
            f"{where} imports {name}"
            for name in imports_of(path)
            if name.split(".")[0] in HANDLERS_BANNED_IMPORTS
        ]
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("create_task", "ensure_future"):
                wrong.append(f"{where}:{node.lineno} starts a task ({node.attr})")
            if not isinstance(node, ast.ClassDef):
                continue
            bases = {ast.unparse(b).split(".")[-1] for b in node.bases}
            is_data, frozen = _is_dataclass(node)
            if bases & set(LISTENER_KINDS) or any(
                b.endswith(("Error", "Exception")) for b in bases
            ):
                continue
            if not is_data:
                wrong.append(f"{where}: class {node.name} is not a listener's kind of class")
            elif not frozen and not node.name.startswith("_"):
                wrong.append(f"{where}: data type {node.name} is not frozen")
    assert wrong == []


def test_layout_scheduler_never_imports_bolt() -> None:
    """The scheduler's services (the Home publisher among them) speak to Slack through
    `slack_sdk` only: Bolt is the listeners' framework."""
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in modules("scheduler")
        for name in imports_of(path)
        if name.startswith("slack_bolt")
    ]
    assert wrong == []


# One home for every domain rule: Slack's id and token shapes and the days range are stated in
# `blocks/limits.py` only; every other module imports them. The engine is exempt: it may import
# only `db`, and its one user pattern reads mentions inside message text, it validates nothing.
PRODUCT = ("app", "handlers", "blocks", "scheduler", "db")
LIMITS = "blocks/limits.py"
LIMITS_EXEMPT = ("scheduler/backfill/",)
ID_OR_TOKEN_PATTERN = re.compile(
    r"\[[CGD]{1,3}\]\[A-Z"  # a channel id: [CGD][A-Z0-9]…, [CG][A-Z0-9]…
    r"|\[[UW]{1,2}\]\[A-Z"  # a user id: [UW][A-Z0-9]…
    r"|xox[a-z]?[\[(|\\]"  # a token: xox[abprse]…, xoxe\.xox[bp]…
)
DAYS_NAMES = {"MIN_DAYS", "MAX_DAYS", "DEFAULT_DAYS"}
DAYS_RANGE_TEXT = re.compile(r"\b1\s*(?:to|–|-|\.\.)\s*365\b")


def _product_modules() -> list[Path]:
    return [
        path
        for package in PRODUCT
        for path in modules(package)
        if not str(path.relative_to(REPO)).startswith((LIMITS, *LIMITS_EXEMPT))
    ]


def test_layout_id_and_token_patterns_live_in_limits_only() -> None:
    """No string literal outside `blocks/limits.py` spells a channel-id, user-id or token
    pattern (`[CGD][A-Z0-9]…`, `[UW][A-Z0-9]…`, `xox[…]`)."""
    wrong = []
    for path in _product_modules():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and ID_OR_TOKEN_PATTERN.search(node.value):
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert wrong == []


def test_layout_days_range_lives_in_limits_only() -> None:
    """MIN_DAYS, MAX_DAYS and DEFAULT_DAYS are bound only in `blocks/limits.py` (elsewhere they
    are imported), and no literal `1 <= x <= 365` or "1 to 365" restates the range."""
    wrong = []
    for path in _product_modules():
        where = path.relative_to(REPO)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name) and name.id in DAYS_NAMES:
                        wrong.append(f"{where}:{node.lineno} binds {name.id}")
            if isinstance(node, ast.Compare):
                numbers = {
                    part.value
                    for part in (node.left, *node.comparators)
                    if isinstance(part, ast.Constant) and isinstance(part.value, int)
                }
                if {1, 365} <= numbers:
                    wrong.append(f"{where}:{node.lineno} compares with 1 and 365")
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and DAYS_RANGE_TEXT.search(node.value):
                wrong.append(f"{where}:{node.lineno} {node.value!r}")
    assert wrong == []


def test_layout_limits_imports_nothing_of_ours() -> None:
    """`blocks/limits.py` is importable from every layer, the engine aside: the standard library
    only."""
    path = REPO / LIMITS
    assert sorted(name for name in imports_of(path) if ours(name)) == []
    assert all(
        not isinstance(node, ast.ImportFrom) or node.level == 0
        for node in ast.walk(ast.parse(path.read_text()))
    )


def test_layout_blocks_import_nothing_of_ours_but_blocks_and_the_records() -> None:
    """`blocks/` is pure: it imports no other package of ours, absolutely or relatively, but the
    entities' plain types."""
    wrong = []
    for path in modules("blocks"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 1:
                wrong.append(f"{path.relative_to(REPO)}:{node.lineno} imports from outside blocks")
        wrong += [
            f"{path.relative_to(REPO)} imports {name}"
            for name in imports_of(path)
            if ours(name) not in (None, "blocks") and name != PLAIN_DATA
        ]
    assert wrong == []
