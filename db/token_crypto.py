"""Encryption of stored Slack tokens at rest: Fernet under the keys of TOKEN_ENCRYPTION_KEY.

The setting holds one or more Fernet keys, comma-separated. The first encrypts; every one of them
decrypts, so a new key can be put first while tokens written under the old one still read
(`rotate` then re-encrypts those under the first key, and the old key can go). Errors name the
setting and never hold a key, a token or a ciphertext. Imports `cryptography` only.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

SETTING = "TOKEN_ENCRYPTION_KEY"


class TokenKeyError(ValueError):
    """TOKEN_ENCRYPTION_KEY is empty or holds something that is not a Fernet key."""


class TokenDecryptError(Exception):
    """A stored token cannot be decrypted: no key of TOKEN_ENCRYPTION_KEY encrypted it (or the
    stored value was altered)."""

    def __init__(self) -> None:
        super().__init__(
            f"a stored token cannot be decrypted with any key of {SETTING} "
            "(the key that encrypted it is not among them)"
        )


def parse_keys(value: str) -> list[Fernet]:
    """The Fernet keys of a TOKEN_ENCRYPTION_KEY value, first (the encrypting one) first.

    Raises `TokenKeyError` naming which key is wrong by position, never by value."""
    parts = [part.strip() for part in value.split(",")]
    if not any(parts):
        raise TokenKeyError("is empty")
    keys: list[Fernet] = []
    for position, part in enumerate(parts, start=1):
        where = f"key {position} of {len(parts)}"
        if not part:
            raise TokenKeyError(f"has an empty entry ({where})")
        try:
            keys.append(Fernet(part))
        except ValueError:  # binascii.Error (bad base64) is a ValueError too
            what = "is not a Fernet key" if len(parts) == 1 else f"has {where} not a Fernet key"
            raise TokenKeyError(f"{what} (expected 32 url-safe base64-encoded bytes)") from None
    return keys


class TokenCipher:
    """Encrypts and decrypts token strings under TOKEN_ENCRYPTION_KEY's keys."""

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(parse_keys(keys))

    def __repr__(self) -> str:
        return "TokenCipher(<keys hidden>)"

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            # `from None`: cryptography's own exception carries nothing useful, and the stored
            # value must not travel in a traceback either.
            raise TokenDecryptError() from None

    def rotate(self, stored: str) -> str:
        """`stored` re-encrypted under the first key (decrypted with whichever key fits)."""
        try:
            return self._fernet.rotate(stored.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise TokenDecryptError() from None


def generate_key() -> str:
    """A new random Fernet key, as TOKEN_ENCRYPTION_KEY takes it."""
    return Fernet.generate_key().decode("ascii")


__all__ = [
    "SETTING",
    "TokenCipher",
    "TokenDecryptError",
    "TokenKeyError",
    "generate_key",
    "parse_keys",
]
