"""What listeners need from the rest of the app, handed to them through Bolt's context.

The composition root (`app/`) builds a `Deps` per workspace it serves (`ServedWorkspaces`), and a
global middleware puts the request's workspace's in its context, so listeners stay plain module
functions. Listeners never import `app/`: what
they need of it (running their slow half after the acknowledgement) comes as a field here.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from slack_bolt.context.respond.async_respond import AsyncRespond

from blocks.replies import Reply, wrong_workspace_reply
from scheduler.channel_directory import ChannelDirectory
from scheduler.people import PeopleDirectory, Viewer
from scheduler.search import may_search

if TYPE_CHECKING:
    from scheduler.home import HomePublisher
    from scheduler.mirror import MirrorService
    from scheduler.purge import PurgeService
    from scheduler.runs import RunService
    from scheduler.schedules import ScheduleService
    from scheduler.search import SearchService
    from scheduler.uninstalls import Uninstalls


def utcnow() -> datetime:
    return datetime.now(UTC)


class AfterAck(Protocol):
    """Runs a listener's slow half once Slack has its acknowledgement (`app.foreground.after_ack`):
    a failure is logged and, given `respond`, told in plain words; `urgent` work (opening a modal
    within its trigger's 3 seconds) does not wait for the other requests being answered."""

    def __call__(
        self,
        work: Coroutine[Any, Any, object],
        respond: AsyncRespond | None = None,
        *,
        urgent: bool = False,
    ) -> None: ...


@dataclass(frozen=True)
class Deps:
    team_id: str  # the workspace the bot token belongs to (auth.test)
    schedules: ScheduleService
    runs: RunService
    home: HomePublisher
    after_ack: AfterAck
    members_can_run: bool = True
    people: PeopleDirectory = field(default_factory=PeopleDirectory)
    channels: ChannelDirectory = field(default_factory=ChannelDirectory)
    clock: Callable[[], datetime] = utcnow
    mirror: MirrorService | None = None  # the live mirror (None: events are not followed)
    purge: PurgeService | None = None  # `/backfill purge` (None: not offered)
    search: SearchService | None = None  # `/backfill search` (None: not offered)
    search_allowed: str = "members"  # SEARCH_ALLOWED
    uninstalls: Uninstalls | None = None  # app_uninstalled, tokens_revoked (None: ignored)

    def __post_init__(self) -> None:
        # Who is a person of this workspace is judged against the workspace we serve.
        self.people.serve(self.team_id)

    def may_run(self, viewer: Viewer) -> bool:
        """Manual runs: admins always; full members of this workspace (not guests, deactivated
        accounts, bots or strangers) when `MEMBERS_CAN_RUN=true`."""
        return viewer.is_admin or (self.members_can_run and viewer.is_member)

    def may_search(self, viewer: Viewer) -> bool:
        return self.search is not None and may_search(viewer, self.search_allowed)


class ServedWorkspaces(Protocol):
    """The workspaces this process serves, each with its listeners' `Deps`."""

    async def deps_for(self, team_id: str, enterprise_id: str | None = None) -> Deps | None:
        """The workspace's `Deps`; None when it is not served here (never installed,
        uninstalled, or another workspace than the bot token's). `enterprise_id`: its Grid
        organisation, as the verified request says."""
        ...

    def refusal(self) -> Reply:
        """What a request for a workspace not served here is told."""
        ...


@dataclass(frozen=True)
class SingleWorkspace:
    """`ServedWorkspaces` of a process serving the one workspace its bot token belongs to."""

    deps: Deps

    async def deps_for(self, team_id: str, enterprise_id: str | None = None) -> Deps | None:
        return self.deps if team_id == self.deps.team_id else None

    def refusal(self) -> Reply:
        return wrong_workspace_reply()


def deps_of(context: Any) -> Deps:
    deps = context["deps"]
    assert isinstance(deps, Deps)
    return deps
