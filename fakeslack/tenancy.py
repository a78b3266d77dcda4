"""Several workspaces in one FakeSlack, each reached with its own tokens (a mixin of `FakeSlack`).

A token names its installation, the installation its workspace: a token of workspace A never
reads B. Workspaces of one enterprise may share an org-wide install (Enterprise Grid, §17.5),
whose token acts on the workspace named by `team_id` (required by `conversations.list` and
`users.list`) or found from the `channel` / `user` argument. The first workspace's own token
(`Workspace.bot_token`, and `add_token`'s) works without any install, as before.

Also the install flow's Slack side: `GET /oauth/v2/authorize` (who "clicks Allow" is chosen by a
header or query parameter, see `_authorize`) redirects to the app with a code; and uninstalls,
which revoke the tokens and deliver `tokens_revoked` and `app_uninstalled`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import hdrs, web

from fakeslack.errors import ApiError
from fakeslack.events import EventDelivery, Identity
from fakeslack.oauth import Installation, OAuthConfig, OAuthState
from fakeslack.socket_mode import SocketModeServer
from fakeslack.spec import DEFAULT_BOT_SCOPES, Profile
from fakeslack.teams import Team, TeamState
from fakeslack.workspace import Workspace

# Methods answered without a bot token: the client authenticates with its id and secret.
OAUTH_METHODS = frozenset({"oauth.v2.access", "apps.uninstall"})
# An org-wide token must say which workspace these act on (§17.5).
TEAM_ARG_METHODS = frozenset({"conversations.list", "users.list"})
# Arguments that name a channel or user, from which an org token's workspace is found.
_LOCATING_ARGS = ("channel", "user", "user_id", "users")
UNINSTALL_EVENTS = ("tokens_revoked", "app_uninstalled")


@dataclass(frozen=True)
class Route:
    """Where an API call acts, or why it is refused."""

    team: TeamState | None
    error: str | None = None
    rate_id: str = ""  # whose rate buckets: per app, per workspace
    scopes: frozenset[str] = frozenset()
    install: Installation | None = None
    org_level: bool = False  # an org token's auth.test: answered for the enterprise


class Tenancy:
    """The multi-workspace half of `FakeSlack` (which is the first workspace's `TeamState`)."""

    workspace: Workspace
    tokens: dict[str, frozenset[str]]
    events: EventDelivery
    socket: SocketModeServer
    profile: Profile
    enterprise_id: str | None
    enterprise_name: str | None
    _trigger_ttl: float

    def scopes_now(self) -> frozenset[str]:
        raise NotImplementedError  # FakeSlack's

    def _init_tenancy(self, config: OAuthConfig | None) -> None:
        assert isinstance(self, TeamState)
        self.oauth = OAuthState(config or OAuthConfig(), app_id=self.workspace.app_id)
        self.teams: dict[str, TeamState] = {self.workspace.team_id: self}
        self._revoked_static: dict[str, str] = {}
        self.events.identities = self._identity

    @property
    def oauth_config(self) -> OAuthConfig:
        return self.oauth.config

    # -- workspaces ---------------------------------------------------------------------------
    def add_workspace(
        self, workspace: Workspace, *, enterprise: tuple[str, str] | None = None
    ) -> Team:
        """Serve `workspace` too (not installed until an OAuth install, or an org install of
        `enterprise` = (id, name)). It must belong to the same app: same `app_id` and signing
        secret as the first workspace (`generate_workspaces` makes such a set)."""
        first = self.workspace
        if workspace.team_id in self.teams:
            raise ValueError(f"workspace {workspace.team_id} is served already")
        if (workspace.app_id, workspace.signing_secret) != (first.app_id, first.signing_secret):
            raise ValueError("every workspace must carry the same app (app_id, signing_secret)")
        team = Team(
            workspace,
            events=self.events,
            socket=self.socket,
            profile=self.profile,
            scopes=self.scopes_now,
            token=lambda: self._token_for(workspace.team_id),
            trigger_ttl=self._trigger_ttl,
            enterprise=enterprise,
        )
        self.teams[workspace.team_id] = team
        return team

    def add_workspaces(
        self, workspaces: Iterable[Workspace], *, enterprise: tuple[str, str] | None = None
    ) -> list[Team]:
        return [self.add_workspace(ws, enterprise=enterprise) for ws in workspaces]

    def join_enterprise(self, enterprise_id: str, name: str) -> None:
        """Make the first workspace part of an enterprise (added ones say so when added)."""
        self.enterprise_id, self.enterprise_name = enterprise_id, name

    def team(self, team_id: str) -> TeamState:
        """The served workspace `team_id` (the first one is this FakeSlack itself)."""
        try:
            return self.teams[team_id]
        except KeyError:
            raise LookupError(f"no workspace {team_id} here") from None

    def enterprise_teams(self, enterprise_id: str) -> list[TeamState]:
        return [t for t in self.teams.values() if t.enterprise_id == enterprise_id]

    def installed(self, key: str) -> bool:
        """Whether the app has a working install on workspace or enterprise `key`."""
        install = self.oauth.installs.get(key)
        static = key == self.workspace.team_id and self.workspace.bot_token in self.tokens
        return (install is not None and install.active) or (
            static and self.workspace.bot_token not in self._revoked_static
        )

    def token_for(self, team_id: str) -> str:
        """The token a test should call workspace `team_id` with: its newest OAuth token (its
        own install's, else its org's), else the first workspace's own static token."""
        token = self._token_for(team_id)
        static = self.workspace.bot_token
        if token is None and team_id == self.workspace.team_id:
            token = None if static in self._revoked_static else static
        if token is None:
            raise LookupError(f"the app is not installed on {team_id}")
        return token

    def _token_for(self, team_id: str) -> str | None:
        token = self.oauth.current_token(team_id)
        enterprise = self.teams[team_id].enterprise_id
        if token is None and enterprise is not None:
            token = self.oauth.current_token(enterprise)
        return token

    # -- installs -----------------------------------------------------------------------------
    def install_code(
        self,
        team_id: str,
        *,
        user: str | None = None,
        scopes: Iterable[str] | None = None,
        redirect_uri: str | None = None,
        org: bool = False,
    ) -> str:
        """The `code` Slack would send to the Redirect URL once `user` (default: an admin of the
        workspace) allowed the install; `org`: an org-wide install of the workspace's
        enterprise (`team_id` may also be the enterprise id). Exchange it with `oauth.v2.access`
        (with `redirect_uri`, when given here)."""
        install = self._new_install(team_id, user, scopes, org)
        return self.oauth.new_code(install, redirect_uri)

    def install(
        self,
        team_id: str,
        *,
        user: str | None = None,
        scopes: Iterable[str] | None = None,
        org: bool = False,
    ) -> dict[str, Any]:
        """Install without the browser: `oauth.v2.access`'s answer (tokens included)."""
        return self.oauth.install_now(self._new_install(team_id, user, scopes, org))

    def expire_tokens(self, key: str) -> int:
        """Every access token of the install on workspace (or enterprise) `key` answers
        `token_expired` from now on; its refresh token still works. How many expired."""
        return self.oauth.expire(key)

    def uninstall(
        self, key: str, *, events: Iterable[str] = UNINSTALL_EVENTS
    ) -> list[dict[str, Any]]:
        """The app is removed from workspace (or enterprise, for an org install) `key`: its
        tokens answer `token_revoked` and `events` (`tokens_revoked`, `app_uninstalled`, in
        that order) go to the app through the usual delivery. The envelopes."""
        identity = self._install_identity(key)
        install = self.oauth.revoke(key)
        static = self.workspace.bot_token
        had_static = key == self.workspace.team_id and static not in self._revoked_static
        if had_static:
            self._revoked_static[static] = "token_revoked"
        if install is None and not had_static:
            raise LookupError(f"the app is not installed on {key}")
        bodies: dict[str, dict[str, Any]] = {
            "tokens_revoked": {
                "type": "tokens_revoked",
                "tokens": {"oauth": [], "bot": [identity.bot_user_id]},
            },
            "app_uninstalled": {"type": "app_uninstalled"},
        }
        wanted = [bodies[name] for name in events]
        return self.events.emit(wanted, key, identity)

    def _install_identity(self, key: str) -> Identity:
        install = self.oauth.installs.get(key)
        if install is not None and install.is_enterprise_install:
            # Org-level, as team_access_* are (§17.5): team_id null, the enterprise named.
            # [unverified] for app_uninstalled; Bolt then deletes the org row (team_id NULL).
            return Identity(None, install.bot_user_id, install.enterprise_id, True)
        identity = self._identity(key)
        if identity is None:
            raise LookupError(f"no workspace {key} here")
        return identity

    def _new_install(
        self, key: str, user: str | None, scopes: Iterable[str] | None, org: bool
    ) -> Installation:
        wanted = frozenset(DEFAULT_BOT_SCOPES if scopes is None else scopes)
        if not wanted:
            raise ApiError("invalid_scope")
        if key in self.teams and not org:
            team = self.teams[key]
            org_key = team.enterprise_id
            if org_key is not None and self.installed(org_key):
                raise ApiError("cannot_install_an_org_installed_app")
            ws = team.workspace
            return Installation(
                team_id=ws.team_id,
                team_name=ws.team_name,
                enterprise_id=team.enterprise_id,
                enterprise_name=team.enterprise_name,
                is_enterprise_install=False,
                bot_user_id=ws.bot_user_id,
                bot_id=ws.bot_id,
                installer=user or _an_admin(ws),
                scopes=wanted,
            )
        enterprise = self.teams[key].enterprise_id if key in self.teams else key
        members = self.enterprise_teams(enterprise) if enterprise else []
        if not members:
            raise LookupError(f"no workspace or enterprise {key} here")
        ws = members[0].workspace
        # An org-wide app has one bot user across the enterprise (generate_workspaces with an
        # enterprise gives every workspace the same one).
        return Installation(
            team_id=None,
            team_name=None,
            enterprise_id=enterprise,
            enterprise_name=members[0].enterprise_name,
            is_enterprise_install=True,
            bot_user_id=ws.bot_user_id,
            bot_id=ws.bot_id,
            installer=user or _an_admin(ws),
            scopes=wanted,
        )

    # -- who the app is, for event envelopes ----------------------------------------------------
    def _identity(self, team_id: str) -> Identity | None:
        team = self.teams.get(team_id)
        if team is None:
            return None
        enterprise = team.enterprise_id
        own = self.oauth.installs.get(team_id)
        org = self.oauth.installs.get(enterprise) if enterprise else None
        if (own is None or not own.active) and org is not None and org.active:
            return Identity(team_id, org.bot_user_id, enterprise, True)
        return Identity(team_id, team.workspace.bot_user_id, enterprise, False)

    # -- tokens to workspaces -------------------------------------------------------------------
    def _route(self, token: str, method: str, args: dict[str, Any]) -> Route:
        """Which workspace a bot token's call acts on (app-level tokens are the server's)."""
        revoked = self._revoked_static.get(token)
        if revoked is not None:
            return Route(None, revoked)
        if token in self.tokens:
            assert isinstance(self, TeamState)
            return Route(self, rate_id=token, scopes=self.tokens[token])
        install, error = self.oauth.check(token)
        if install is None or error is not None:
            return Route(None, error or "invalid_auth")
        rate_id = f"oauth:{self.oauth.app_id}"  # one app: a refreshed token keeps its buckets
        if not install.is_enterprise_install:
            assert install.team_id is not None
            return Route(self.teams[install.team_id], None, rate_id, install.scopes, install)
        members = self.enterprise_teams(install.key)
        if method == "auth.test":
            return Route(members[0], None, rate_id, install.scopes, install, org_level=True)
        team_arg = args.get("team_id")
        if team_arg:
            found = [t for t in members if t.team_id == team_arg]
            if not found:
                return Route(None, "team_access_not_granted")
            return Route(found[0], None, rate_id, install.scopes, install)
        if method in TEAM_ARG_METHODS:
            return Route(None, "missing_argument")
        return Route(_locate(members, args), None, rate_id, install.scopes, install)

    def auth_test_extras(self, route: Route, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """`auth.test` as Slack answers it for an OAuth token: an org token speaks for its
        enterprise (team_id = the enterprise id), and a rotating token says when it expires."""
        install = route.install
        if install is not None and route.org_level:
            body.update(
                url=f"https://{(install.enterprise_id or '').lower()}.enterprise.slack.com/",
                team=install.enterprise_name,
                team_id=install.enterprise_id,
                user_id=install.bot_user_id,
                bot_id=install.bot_id,
            )
        if route.team is not None and route.team.enterprise_id is not None:
            body["enterprise_id"] = route.team.enterprise_id
        if install is not None:
            body["is_enterprise_install"] = install.is_enterprise_install
        expires_in = self.oauth.expires_in(token)
        if expires_in is not None:
            body["expires_in"] = expires_in
        return body

    # -- oauth.v2.access, apps.uninstall --------------------------------------------------------
    def oauth_call(
        self, method: str, args: dict[str, Any], token: str | None, request: web.Request
    ) -> dict[str, Any]:
        """The answer to an OAUTH_METHODS call; raises `ApiError`."""
        basic = _basic_auth(request)
        if method == "oauth.v2.access":
            return self.oauth.access(args, basic)
        # apps.uninstall: the install's own token plus the client's credentials.
        client_id, secret = basic or (args.get("client_id"), args.get("client_secret"))
        if client_id != self.oauth.config.client_id:
            raise ApiError("invalid_client_id")
        if secret != self.oauth.config.client_secret:
            raise ApiError("bad_client_secret")
        if token is None:
            raise ApiError("not_authed")
        route = self._route(token, "apps.uninstall", {})
        if route.error is not None or route.team is None:
            raise ApiError(route.error or "invalid_auth")
        key = route.install.key if route.install is not None else route.team.team_id
        self.uninstall(key)
        return {"ok": True}

    # -- HTTP routes ------------------------------------------------------------------------------
    def install_tenancy(self, app: web.Application) -> None:
        app.router.add_get("/oauth/v2/authorize", self._authorize)
        app.router.add_get("/_fake/teams", self._get_teams)
        app.router.add_post("/_fake/oauth/code", self._post_code)
        app.router.add_post("/_fake/oauth/install", self._post_install)
        app.router.add_post("/_fake/teams/{key}/expire_tokens", self._post_expire)
        app.router.add_post("/_fake/teams/{key}/uninstall", self._post_uninstall)

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        """Slack's `https://slack.com/oauth/v2/authorize` once a person clicked Allow: a 302 to
        `redirect_uri?code=…&state=…`. Who clicked: header `X-Fake-Team` or query `fake_team`
        (else Slack's own `team`, else the first workspace), `X-Fake-User` / `fake_user`
        (default an admin); `X-Fake-Org-Install` / `fake_org_install` = 1 installs org-wide;
        `X-Fake-Deny` / `fake_deny` = 1 clicks Cancel (`?error=access_denied`)."""
        q = request.query
        config = self.oauth.config
        if q.get("client_id") != config.client_id:
            return web.Response(status=400, text="invalid_client_id")
        asked = q.get("redirect_uri")
        target = asked or (config.redirect_urls[0] if config.redirect_urls else None)
        if not target or not config.redirect_ok(target):
            return web.Response(status=400, text="bad_redirect_uri")
        state = {"state": q["state"]} if "state" in q else {}
        if _flag(request, "deny"):
            return _redirect(target, {"error": "access_denied", **state})
        key = _pick(request, "team") or q.get("team") or self.workspace.team_id
        scopes = [s for s in q.get("scope", "").split(",") if s.strip()]
        try:
            install = self._new_install(
                key, _pick(request, "user"), scopes, _flag(request, "org_install")
            )
        except ApiError as exc:
            return web.Response(status=400, text=exc.error)
        except LookupError as exc:
            return web.Response(status=400, text=str(exc))
        code = self.oauth.new_code(install, asked)
        return _redirect(target, {"code": code, **state})

    async def _get_teams(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "team_id": t.team_id,
                    "name": t.workspace.team_name,
                    "enterprise_id": t.enterprise_id,
                    "installed": self.installed(t.team_id)
                    or (t.enterprise_id is not None and self.installed(t.enterprise_id)),
                }
                for t in self.teams.values()
            ]
        )

    async def _post_code(self, request: web.Request) -> web.Response:
        """`{"team_id", "user"?, "scopes"?: [...], "redirect_uri"?, "org"?: bool}` -> code."""
        try:
            body = await _json_object(request)
            code = self.install_code(
                str(body["team_id"]),
                user=body.get("user"),
                scopes=body.get("scopes"),
                redirect_uri=body.get("redirect_uri"),
                org=bool(body.get("org")),
            )
        except (ValueError, TypeError, KeyError, LookupError, ApiError) as exc:
            return web.json_response({"ok": False, "error": _why(exc)}, status=400)
        return web.json_response({"ok": True, "code": code})

    async def _post_install(self, request: web.Request) -> web.Response:
        """Same body as `/_fake/oauth/code` (no redirect_uri): `oauth.v2.access`'s answer."""
        try:
            body = await _json_object(request)
            answer = self.install(
                str(body["team_id"]),
                user=body.get("user"),
                scopes=body.get("scopes"),
                org=bool(body.get("org")),
            )
        except (ValueError, TypeError, KeyError, LookupError, ApiError) as exc:
            return web.json_response({"ok": False, "error": _why(exc)}, status=400)
        return web.json_response(answer)

    async def _post_expire(self, request: web.Request) -> web.Response:
        count = self.expire_tokens(request.match_info["key"])
        return web.json_response({"ok": True, "expired": count})

    async def _post_uninstall(self, request: web.Request) -> web.Response:
        """Optional body `{"events": ["tokens_revoked", "app_uninstalled"]}` (any subset)."""
        try:
            body = await _json_object(request) if request.can_read_body else {}
            names = body.get("events", UNINSTALL_EVENTS)
            if not set(names) <= set(UNINSTALL_EVENTS):
                raise ValueError(f"events are among {', '.join(UNINSTALL_EVENTS)}")
            envelopes = self.uninstall(request.match_info["key"], events=names)
        except (ValueError, TypeError, LookupError) as exc:
            return web.json_response({"ok": False, "error": _why(exc)}, status=400)
        return web.json_response({"ok": True, "event_ids": [e["event_id"] for e in envelopes]})


def _an_admin(ws: Workspace) -> str:
    people = [u for u in ws.users.values() if not u.get("is_bot") and not u.get("deleted")]
    admins = [u for u in people if u.get("is_admin") or u.get("is_owner")]
    chosen = (admins or people)[:1]
    return str(chosen[0]["id"]) if chosen else ws.bot_user_id


def _locate(members: list[TeamState], args: dict[str, Any]) -> TeamState:
    """The enterprise workspace holding the call's channel or user (else the first)."""
    for name in _LOCATING_ARGS:
        value = args.get(name)
        if not isinstance(value, str) or not value:
            continue
        ident = value.split(",")[0]
        for team in members:
            ws = team.workspace
            if ident in ws.channels or ident in ws.users:
                return team
    return members[0]


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    """HTTP Basic credentials (client id, secret), ("", "") if unreadable, None if absent."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    if not header.startswith("Basic "):
        return None
    try:
        login, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")  # refused as a wrong client id
    return login, password


def _pick(request: web.Request, name: str) -> str | None:
    header = "X-Fake-" + "-".join(part.capitalize() for part in name.split("_"))
    return request.headers.get(header) or request.query.get(f"fake_{name}") or None


def _flag(request: web.Request, name: str) -> bool:
    return (_pick(request, name) or "").lower() in ("1", "true", "yes")


def _redirect(target: str, params: dict[str, str]) -> web.Response:
    sep = "&" if "?" in target else "?"
    return web.Response(status=302, headers={"Location": target + sep + urlencode(params)})


async def _json_object(request: web.Request) -> dict[str, Any]:
    body = await request.json()
    if not isinstance(body, dict):
        raise TypeError("want a JSON object")
    return body


def _why(exc: Exception) -> str:
    return exc.error if isinstance(exc, ApiError) else str(exc)
