"""`Gateways`: the one place that gives a workspace its `SlackGateway`.

Slack's rate limits are per app per workspace, so each workspace gets a gateway of its own, with
its own pacer and its own token source: one workspace's big backfill or its 429s never slow
another's calls, and a rotating token is refreshed for the workspace it belongs to. The engine and
the live mirror ask for a workspace's gateway here; a process serving one workspace
(`SLACK_BOT_TOKEN`) has exactly one entry.
"""

from __future__ import annotations

from collections.abc import Callable

from scheduler.backfill.gateway import SlackGateway
from scheduler.backfill.tokens import BotTokens, WorkspaceToken

# Builds a workspace's gateway around its token source (base URL, profile, observer, session...).
GatewayFactory = Callable[[WorkspaceToken], SlackGateway]


class Gateways:
    """A gateway per workspace, made on first use and kept for the process's life (so are its
    pacer's windows: they describe Slack's per-workspace budget, not one run's)."""

    def __init__(self, make: Callable[[str], SlackGateway]) -> None:
        self._make = make
        self._gateways: dict[str, SlackGateway] = {}

    @classmethod
    def per_workspace(cls, tokens: BotTokens, factory: GatewayFactory) -> Gateways:
        """Each workspace's own gateway around its own token source (`tokens`)."""
        return cls(lambda workspace_id: factory(WorkspaceToken(tokens, workspace_id)))

    @classmethod
    def of(cls, gateway: SlackGateway) -> Gateways:
        """One gateway for every workspace asked for: a caller that reads one workspace (tests,
        benchmarks) and built its gateway itself."""
        return cls(lambda _workspace_id: gateway)

    def for_workspace(self, workspace_id: str) -> SlackGateway:
        gateway = self._gateways.get(workspace_id)
        if gateway is None:
            gateway = self._gateways[workspace_id] = self._make(workspace_id)
        return gateway

    def all(self) -> list[SlackGateway]:
        """Every gateway made so far, each once."""
        return list({id(g): g for g in self._gateways.values()}.values())

    def pacing_wait_seconds(self) -> float:
        """Seconds every workspace's calls have waited for Slack's limits, summed."""
        return sum(gateway.pacer.total_wait_seconds for gateway in self.all())
