"""The image and the compose stack name only real settings, and the replicas share one store.

Static checks that run everywhere (no Docker daemon needed): `.env.example` lists exactly the
settings the app reads, `compose.yaml` sets only those, runs at least two app replicas in HTTP
mode on one PostgreSQL and one Chroma server, and the `Dockerfile` is multi-stage, non-root, with
a health check on `/healthz` and `python -m app run` as its entry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from app.settings import ACCEPTED, FILE_SETTINGS, load_settings

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {name for name in ACCEPTED if not name.endswith("_FILE")}


def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text())  # type: ignore[no-any-return]


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = dotenv_values(REPO / ".env.example")
    assert set(listed) == SETTINGS
    # Its values are the defaults: loading it as it is must work and change nothing.
    assert load_settings({}, env_file=REPO / ".env.example") == load_settings({}, env_file=None)


def test_compose_sets_only_real_settings() -> None:
    app = compose()["services"]["app"]
    environment = app["environment"]
    unknown = set(environment) - SETTINGS - {f"{n}_FILE" for n in FILE_SETTINGS}
    assert unknown == set()


def test_compose_replicas_share_one_database_and_one_chroma_server() -> None:
    stack = compose()
    services = stack["services"]
    apps = [s for s in services.values() if s.get("build")]
    assert len(apps) == 1 and apps[0]["deploy"]["replicas"] >= 2  # one definition, N replicas
    environment = apps[0]["environment"]
    database = re.fullmatch(
        r"postgresql\+asyncpg://[^@]+@([a-z]+):5432/\w+", environment["DATABASE_URL"]
    )
    assert database is not None and database.group(1) in services
    assert "postgres" in services[database.group(1)]["image"]
    chroma = re.fullmatch(r"http://([a-z]+):8000", environment["CHROMA_URL"])
    assert chroma is not None and "chromadb/chroma" in services[chroma.group(1)]["image"]
    assert environment["SLACK_APP_TOKEN"] == ""  # HTTP mode: blank is unset
    settings = load_settings({k: str(v) for k, v in environment.items()}, env_file=None)
    assert not settings.socket_mode and settings.chroma_url == "http://chroma:8000"
    # One port in front of the replicas.
    published = [s for s in services.values() if s.get("ports")]
    assert len(published) == 1 and "server app:3000" in stack["configs"]["nginx"]["content"]


def test_compose_chroma_server_matches_the_pinned_client() -> None:
    pins = (REPO / "pyproject.toml").read_text()
    pinned = re.search(r'"chromadb==([0-9.]+)"', pins)
    assert pinned is not None
    assert compose()["services"]["chroma"]["image"] == f"chromadb/chroma:{pinned.group(1)}"


def test_dockerfile_is_multi_stage_non_root_with_a_health_check() -> None:
    text = (REPO / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2
    # Every stage's base is a slim Python image, given directly or through the build argument.
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, flags=re.MULTILINE)
    assert base is not None and base.group(1).startswith("python:") and "slim" in base.group(1)
    assert all(s == "${PYTHON_IMAGE}" or ("python:" in s and "slim" in s) for s in stages)
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    assert re.search(r"^HEALTHCHECK .*?/healthz", text, flags=re.MULTILINE | re.DOTALL)
    assert 'ENTRYPOINT ["python", "-m", "app"]' in text and 'CMD ["run"]' in text
    assert re.search(r"^ARG BAKE_EMBEDDING_MODEL=false", text, flags=re.MULTILINE)
    # The image installs the package itself: its dependencies are the pinned ones.
    assert "pip install ." in text
