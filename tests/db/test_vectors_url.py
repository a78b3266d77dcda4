"""`check_chroma_url`: the `CHROMA_URL` shapes the store accepts, and clear one-line errors."""

from __future__ import annotations

import pytest

from db.vectors import _parse_chroma_url, check_chroma_url
from tests.support.refusals import one_line_refusal


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("http://localhost:8000", ("localhost", 8000, False)),
        ("http://127.0.0.1:8000/", ("127.0.0.1", 8000, False)),
        ("https://chroma.example.com", ("chroma.example.com", 443, True)),
        ("http://chroma", ("chroma", 80, False)),
        ("https://chroma-1.internal.example:9443", ("chroma-1.internal.example", 9443, True)),
        ("HTTP://Chroma:8000", ("chroma", 8000, False)),
        ("http://[::1]:8000", ("[::1]", 8000, False)),
    ],
)
def test_vectors_url_accepts_http_and_https(url: str, parsed: tuple[str, int, bool]) -> None:
    check_chroma_url(url)
    assert _parse_chroma_url(url) == parsed


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost:8000", "http:// or https://"),
        ("ftp://chroma:8000", "http:// or https://"),
        ("chroma", "http:// or https://"),
        ("http://", "no valid host"),
        ("http://:8000", "no valid host"),
        ("http://bad host:8000", "no valid host"),
        ("http://chroma:notaport", "malformed"),
        ("http://chroma:99999", "malformed"),
        ("http://chroma:0", "port 0"),
        ("http://chroma:8000/api/v2", "path"),
        ("http://chroma:8000?x=1", "path, query"),
        ("http://chroma:8000#frag", "fragment"),
    ],
)
def test_vectors_url_rejects_bad_urls_clearly(url: str, reason: str) -> None:
    message = one_line_refusal(check_chroma_url, url)
    assert reason in message
    assert "http(s)://host[:port]" in message


def test_vectors_url_never_echoes_credentials() -> None:
    with pytest.raises(ValueError) as info:
        check_chroma_url("https://admin:s3cret@chroma:8000")
    assert "s3cret" not in str(info.value)
    assert "credentials" in str(info.value)
