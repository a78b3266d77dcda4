"""Tokens at rest: Fernet under TOKEN_ENCRYPTION_KEY's keys, first encrypts, all decrypt; errors
name the setting and never show a key, a token or a ciphertext."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from db.token_crypto import TokenCipher, TokenDecryptError, TokenKeyError, generate_key

TOKEN = "xoxe.xoxb-1-plain-bot-token-never-stored"


def test_token_crypto_round_trip_holds_no_plain_text() -> None:
    cipher = TokenCipher(generate_key())
    stored = cipher.encrypt(TOKEN)
    assert TOKEN not in stored and "plain-bot-token" not in stored
    assert cipher.decrypt(stored) == TOKEN
    assert cipher.encrypt(TOKEN) != stored  # a fresh IV each time: equal tokens look different


def test_token_crypto_first_key_encrypts_every_key_decrypts() -> None:
    a, b = generate_key(), generate_key()
    under_a = TokenCipher(a).encrypt(TOKEN)
    both = TokenCipher(f"{b}, {a}")  # spaces around the comma are allowed
    assert both.decrypt(under_a) == TOKEN
    under_b = both.encrypt(TOKEN)
    assert Fernet(b.encode()).decrypt(under_b.encode()).decode() == TOKEN
    with pytest.raises(TokenDecryptError):
        TokenCipher(a).decrypt(under_b)


def test_token_crypto_rotation_moves_a_token_to_the_first_key() -> None:
    a, b = generate_key(), generate_key()
    under_a = TokenCipher(a).encrypt(TOKEN)
    rotated = TokenCipher(f"{b},{a}").rotate(under_a)
    assert TokenCipher(b).decrypt(rotated) == TOKEN  # "B" alone reads it now
    with pytest.raises(TokenDecryptError):
        TokenCipher(a).decrypt(rotated)


def test_token_crypto_unknown_key_is_a_clear_error_without_the_ciphertext() -> None:
    stored = TokenCipher(generate_key()).encrypt(TOKEN)
    other = generate_key()
    with pytest.raises(TokenDecryptError) as err:
        TokenCipher(other).decrypt(stored)
    message = str(err.value)
    assert "TOKEN_ENCRYPTION_KEY" in message and "\n" not in message
    assert stored not in message and other not in message and TOKEN not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    with pytest.raises(TokenDecryptError):
        TokenCipher(other).rotate(stored)
    with pytest.raises(TokenDecryptError):
        TokenCipher(other).decrypt("not even base64 \u00e9")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "is empty"),
        (" , ", "is empty"),
        ("not-a-fernet-key-secret-1234", "is not a Fernet key"),
        ("Zm9vYmFy", "is not a Fernet key"),  # valid base64, wrong length
        (f"{generate_key()},,{generate_key()}", "empty entry (key 2 of 3)"),
        (f"{generate_key()},bad-second-key-secret-5678", "key 2 of 2 not a Fernet key"),
    ],
)
def test_token_crypto_malformed_keys_are_one_line_without_the_key(value: str, says: str) -> None:
    with pytest.raises(TokenKeyError) as err:
        TokenCipher(value)
    message = str(err.value)
    assert says in message and "\n" not in message
    for part in value.split(","):
        if part.strip():
            assert part.strip() not in message


def test_token_crypto_repr_hides_the_keys() -> None:
    key = generate_key()
    assert key not in repr(TokenCipher(key)) and key not in str(TokenCipher(key))
