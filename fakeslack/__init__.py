"""fakeslack: a faithful local emulator of the Slack Web API for tests, benchmarks and the demo.

Standalone: imports only the standard library and aiohttp, never the app's packages.
"""

from __future__ import annotations

from fakeslack.change_stream import ChangeStream, change_stream
from fakeslack.changes import Change
from fakeslack.events import EventsConfig
from fakeslack.faults import Faults
from fakeslack.fleet import generate_workspaces
from fakeslack.generator import generate
from fakeslack.ground_truth import (
    FinalTruth,
    GroundTruth,
    final_truth,
    ground_truth,
    is_noise,
    visible_text,
)
from fakeslack.oauth import OAuthConfig
from fakeslack.server import FakeSlack
from fakeslack.spec import DEFAULT_BOT_SCOPES, PROFILES
from fakeslack.teams import Team, TeamState
from fakeslack.workspace import Channel, Workspace

__all__ = [
    "DEFAULT_BOT_SCOPES",
    "PROFILES",
    "Change",
    "ChangeStream",
    "Channel",
    "EventsConfig",
    "FakeSlack",
    "Faults",
    "FinalTruth",
    "GroundTruth",
    "OAuthConfig",
    "Team",
    "TeamState",
    "Workspace",
    "change_stream",
    "final_truth",
    "generate",
    "generate_workspaces",
    "ground_truth",
    "is_noise",
    "visible_text",
]
