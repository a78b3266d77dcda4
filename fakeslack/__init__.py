"""fakeslack: a faithful local emulator of the Slack Web API for tests, benchmarks and the demo.

Standalone: imports only the standard library and aiohttp, never the app's packages.
"""

from __future__ import annotations

from fakeslack.faults import Faults
from fakeslack.generator import generate
from fakeslack.ground_truth import GroundTruth, ground_truth, is_noise, visible_text
from fakeslack.server import FakeSlack
from fakeslack.spec import DEFAULT_BOT_SCOPES, PROFILES
from fakeslack.workspace import Channel, Workspace

__all__ = [
    "DEFAULT_BOT_SCOPES",
    "PROFILES",
    "Channel",
    "FakeSlack",
    "Faults",
    "GroundTruth",
    "Workspace",
    "generate",
    "ground_truth",
    "is_noise",
    "visible_text",
]
