"""OAuth v2 as Slack runs it for one app (shared/slack-platform.md §17): install codes, the
`oauth.v2.access` exchange and refresh, token rotation and expiry, revocation.

Pure state and Slack's answers; the HTTP side (the authorize redirect, routing a token to its
workspace, the uninstall events) is in `tenancy.py`. Tokens are random and never logged.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fakeslack.errors import ApiError

TWELVE_HOURS = 43200.0


@dataclass(frozen=True)
class OAuthConfig:
    """The app's OAuth settings. `redirect_urls` empty accepts any `redirect_uri` (tests listen
    on random ports); else one must equal or lie below one of them (Slack's rule; the HTTPS
    requirement is not enforced, tests speak plain HTTP). `token_rotation` on: access tokens
    `xoxe.xoxb-…` that expire after `token_ttl` seconds, with single-use refresh tokens."""

    client_id: str = "1111111111111.2222222222222"
    client_secret: str = field(default_factory=lambda: secrets.token_hex(16))
    redirect_urls: tuple[str, ...] = ()
    token_rotation: bool = False
    token_ttl: float = TWELVE_HOURS
    code_ttl: float = 600.0

    def redirect_ok(self, uri: str) -> bool:
        return not self.redirect_urls or any(uri.startswith(u) for u in self.redirect_urls)


@dataclass
class Installation:
    """One install of the app: a workspace (`team_id`) or an org (`is_enterprise_install`,
    `team_id` None, every workspace of `enterprise_id`)."""

    team_id: str | None
    team_name: str | None
    enterprise_id: str | None
    enterprise_name: str | None
    is_enterprise_install: bool
    bot_user_id: str
    bot_id: str
    installer: str
    scopes: frozenset[str]
    active: bool = True

    @property
    def key(self) -> str:
        """The id it is installed on: the workspace, or the enterprise for an org install."""
        key = self.enterprise_id if self.is_enterprise_install else self.team_id
        assert key is not None
        return key


@dataclass
class _Token:
    install: Installation
    expires_at: float | None  # None: never (no rotation)
    issued: float
    error: str | None = None  # set once unusable: "token_expired", "token_revoked"


@dataclass
class _Code:
    install: Installation
    redirect_uri: str | None
    expires_at: float


class OAuthState:
    """Codes, access tokens and refresh tokens of the app; thread-safe (tests call in from
    another thread while the server answers)."""

    def __init__(
        self,
        config: OAuthConfig,
        *,
        app_id: str,
        clock: Callable[[], float] = time.time,  # wall clock: apps compare with their time()
    ) -> None:
        self.config = config
        self.app_id = app_id
        self.clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, _Token] = {}
        self._refresh: dict[str, Installation] = {}  # live refresh tokens only (single use)
        self.installs: dict[str, Installation] = {}  # key (team or enterprise id) -> newest

    # -- codes --------------------------------------------------------------------------------
    def new_code(self, install: Installation, redirect_uri: str | None) -> str:
        code = f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**13):013d}."
        code += secrets.token_hex(32)
        with self._lock:
            self._codes[code] = _Code(install, redirect_uri, self.clock() + self.config.code_ttl)
        return code

    # -- oauth.v2.access ----------------------------------------------------------------------
    def access(self, args: dict[str, Any], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Slack's answer to `oauth.v2.access`; raises `ApiError`. Client credentials come by
        HTTP Basic auth (slack_sdk's way) or as form fields."""
        client_id, client_secret = basic or (args.get("client_id"), args.get("client_secret"))
        if client_id != self.config.client_id:
            raise ApiError("invalid_client_id")
        if client_secret != self.config.client_secret:
            raise ApiError("bad_client_secret")
        grant = args.get("grant_type") or "authorization_code"
        if grant == "refresh_token":
            return self._refresh_grant(args.get("refresh_token"))
        if grant != "authorization_code":
            raise ApiError("invalid_grant_type")
        code = str(args.get("code") or "")
        with self._lock:
            pending = self._codes.get(code)
            if pending is None or pending.expires_at <= self.clock():
                raise ApiError("invalid_code")
            if (
                pending.redirect_uri is not None
                and args.get("redirect_uri") != pending.redirect_uri
            ):
                raise ApiError("bad_redirect_uri")
            del self._codes[code]  # single use
            install = self._merge(pending.install)
        return self._issue(install)

    def install_now(self, install: Installation) -> dict[str, Any]:
        """What a code exchange for `install` answers, without the code (a direct install)."""
        with self._lock:
            install = self._merge(install)
        return self._issue(install)

    def _merge(self, install: Installation) -> Installation:
        """A reinstall keeps the scopes granted before (Slack: scopes add up over reinstalls)."""
        old = self.installs.get(install.key)
        if old is not None and old.active:
            install.scopes = old.scopes | install.scopes
            old.active = False
            for token in self._tokens.values():
                if token.install is old:
                    token.install = install  # the same grant, now with the added scopes
            for refresh, owner in list(self._refresh.items()):
                if owner is old:
                    self._refresh[refresh] = install
        self.installs[install.key] = install
        return install

    def _refresh_grant(self, refresh_token: object) -> dict[str, Any]:
        with self._lock:
            install = self._refresh.pop(str(refresh_token or ""), None)
        if install is None or not install.active:
            raise ApiError("invalid_refresh_token")
        return self._issue(install, refreshed=True)

    def _issue(self, install: Installation, *, refreshed: bool = False) -> dict[str, Any]:
        config = self.config
        now = self.clock()
        rotation = config.token_rotation
        prefix = "xoxe.xoxb-1-" if rotation else f"xoxb-{secrets.randbelow(10**12):012d}-"
        token = prefix + secrets.token_urlsafe(36)
        with self._lock:
            if not rotation and not refreshed:
                # Without rotation a reinstall answers the workspace's existing bot token.
                for old, info in self._tokens.items():
                    if info.install is install and info.error is None:
                        token = old
                        break
            if token not in self._tokens:
                expires = now + config.token_ttl if rotation else None
                self._tokens[token] = _Token(install, expires, now)
                self._keep_two_active(install)
            body: dict[str, Any] = {
                "ok": True,
                "app_id": self.app_id,
                "access_token": token,
                "token_type": "bot",
                "scope": ",".join(sorted(install.scopes)),
                "bot_user_id": install.bot_user_id,
                "team": None
                if install.is_enterprise_install
                else {"id": install.team_id, "name": install.team_name},
                "enterprise": None
                if install.enterprise_id is None
                else {"id": install.enterprise_id, "name": install.enterprise_name},
                "is_enterprise_install": install.is_enterprise_install,
                "authed_user": {"id": install.installer},
            }
            if rotation:
                refresh = "xoxe-1-" + secrets.token_urlsafe(48)
                self._refresh[refresh] = install
                body["expires_in"] = int(config.token_ttl)
                body["refresh_token"] = refresh
        return body

    def _keep_two_active(self, install: Installation) -> None:
        """Slack keeps at most 2 rotated access tokens of an installation alive; older ones go."""
        if not self.config.token_rotation:
            return
        alive = sorted(
            (t for t in self._tokens.values() if t.install is install and t.error is None),
            key=lambda t: t.issued,
        )
        for old in alive[:-2]:
            old.error = "token_expired"

    # -- tokens -------------------------------------------------------------------------------
    def check(self, token: str) -> tuple[Installation | None, str | None]:
        """The token's installation, or why it is refused (None, None: never issued here)."""
        with self._lock:
            info = self._tokens.get(token)
            if info is None:
                return None, None
            expired = info.expires_at is not None and info.expires_at <= self.clock()
            if info.error is None and expired:
                info.error = "token_expired"
            return info.install, info.error

    def expires_in(self, token: str) -> int | None:
        info = self._tokens.get(token)
        if info is None or info.expires_at is None:
            return None
        return max(0, int(info.expires_at - self.clock()))

    def current_token(self, key: str) -> str | None:
        """The newest usable access token of the installation on `key` (team or enterprise)."""
        with self._lock:
            install = self.installs.get(key)
            best: tuple[float, str] | None = None
            for token, info in self._tokens.items():
                if info.install is install and info.error is None:
                    if info.expires_at is not None and info.expires_at <= self.clock():
                        continue
                    if best is None or info.issued > best[0]:
                        best = (info.issued, token)
            return None if best is None else best[1]

    def expire(self, key: str) -> int:
        """Expire every access token of the installation on `key` now (refresh tokens stay
        good, as when 12 h have passed); how many."""
        return self._end(key, "token_expired", uninstall=False)

    def revoke(self, key: str) -> Installation | None:
        """Uninstall: every token (access and refresh) of the installation on `key` stops
        working; the installation, or None if there was none active."""
        with self._lock:
            install = self.installs.get(key)
        if install is None or not install.active:
            return None
        self._end(key, "token_revoked", uninstall=True)
        return install

    def _end(self, key: str, error: str, *, uninstall: bool) -> int:
        with self._lock:
            install = self.installs.get(key)
            if install is None:
                return 0
            count = 0
            for info in self._tokens.values():
                if info.install is install and info.error is None:
                    info.error = error
                    count += 1
            if uninstall:
                install.active = False
                for refresh, owner in list(self._refresh.items()):
                    if owner is install:
                        del self._refresh[refresh]
            return count
