"""What listeners need from the rest of the app, handed to them through Bolt's context.

The composition root (`app/`) builds one `Deps` and a global middleware puts it in every
request's context, so listeners stay plain module functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from scheduler.channel_directory import ChannelDirectory
from scheduler.people import PeopleDirectory, Viewer

if TYPE_CHECKING:
    from handlers.home import HomePublisher
    from scheduler.runs import RunService
    from scheduler.schedules import ScheduleService


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Deps:
    team_id: str  # the workspace the bot token belongs to (auth.test)
    schedules: ScheduleService
    runs: RunService
    home: HomePublisher
    members_can_run: bool = True
    people: PeopleDirectory = field(default_factory=PeopleDirectory)
    channels: ChannelDirectory = field(default_factory=ChannelDirectory)
    clock: Callable[[], datetime] = utcnow

    def __post_init__(self) -> None:
        # Who is a person of this workspace is judged against the workspace we serve.
        self.people.serve(self.team_id)

    def may_run(self, viewer: Viewer) -> bool:
        """Manual runs: admins always; full members of this workspace (not guests, deactivated
        accounts, bots or strangers) when `MEMBERS_CAN_RUN=true`."""
        return viewer.is_admin or (self.members_can_run and viewer.is_member)


def deps_of(context: Any) -> Deps:
    deps = context["deps"]
    assert isinstance(deps, Deps)
    return deps
