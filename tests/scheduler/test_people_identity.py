"""Who is an admin here (issue 10, finding 4): the role flags of `users.info` AND a full member
of this workspace: our `team_id` (or, on Grid, ours in `enterprise_user.teams`), not a guest,
not deactivated, not a bot; with no workspace to judge against, nobody is."""

from __future__ import annotations

from typing import Any

import pytest

from scheduler.people import (
    BOT,
    DEACTIVATED,
    GUEST,
    MEMBER,
    STRANGER,
    UNKNOWN,
    is_workspace_admin,
    standing_of,
)

OURS, THEIRS = "T0OURS0001", "T0THEIRS01"
ADMIN: dict[str, Any] = {
    "id": "U0ADMIN001",
    "team_id": OURS,
    "is_admin": True,
    "is_owner": False,
    "is_primary_owner": False,
}


@pytest.mark.parametrize(
    ("changes", "standing", "admin"),
    [
        ({}, MEMBER, True),
        ({"is_admin": False, "is_owner": True}, MEMBER, True),
        ({"is_admin": False, "is_primary_owner": True}, MEMBER, True),
        ({"is_admin": False}, MEMBER, False),
        ({"team_id": THEIRS}, STRANGER, False),  # a Slack Connect admin of another organisation
        ({"team_id": None}, STRANGER, False),
        ({"is_stranger": True}, STRANGER, False),
        ({"team_id": THEIRS, "enterprise_user": {"teams": [THEIRS, OURS]}}, MEMBER, True),
        ({"team_id": THEIRS, "enterprise_user": {"teams": [THEIRS]}}, STRANGER, False),
        ({"is_admin": False, "enterprise_user": {"is_admin": True, "teams": [OURS]}}, MEMBER, True),
        ({"is_restricted": True}, GUEST, False),
        ({"is_ultra_restricted": True}, GUEST, False),
        ({"deleted": True}, DEACTIVATED, False),
        ({"is_bot": True}, BOT, False),
        ({"is_workflow_bot": True}, BOT, False),
        ({"id": "USLACKBOT"}, BOT, False),
    ],
)
def test_admin_needs_the_role_and_membership_of_this_workspace(
    changes: dict[str, Any], standing: str, admin: bool
) -> None:
    user = {**ADMIN, **changes}
    assert standing_of(user, OURS) == standing
    assert is_workspace_admin(user, OURS) is admin


def test_unknown_users_and_an_unbound_directory_grant_nothing() -> None:
    assert standing_of({}, OURS) == UNKNOWN
    assert not is_workspace_admin({}, OURS)
    assert standing_of(ADMIN, None) == STRANGER
    assert not is_workspace_admin(ADMIN, None)
