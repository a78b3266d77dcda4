"""A PostgreSQL restart in the middle of a run, with real OS processes (issue 10, finding 1):
`python -m app run` against a private PostgreSQL server that the test stops (`pg_ctl stop -m
fast`) while a run is half-way and starts again on the same port and data directory, and
fakeslack answering history slowly.

The run resumes on its own once the database is back and finishes (the admin gets its summary
DM), nothing is left `running`, a later `/backfill run` is accepted, a `/backfill status` during
the outage gets the plain "database is unavailable" answer (never a traceback) and `/readyz` says
503 until the database is back. The heartbeat loop logs the outage in a line or two, not a
traceback per tick."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from db.models import BackfillJobRun
from db.session import create_engine, make_sessionmaker
from fakeslack import FakeSlack, generate
from fakeslack.outgoing import form_headers, slash_command_body
from handlers.errors import DATABASE_UNAVAILABLE
from tests.conftest import create_postgres_database
from tests.support.app_process import AppProcess, app_settings, new_workdir
from tests.support.restartable_postgres import RestartablePostgres

OUTAGE_S = 20  # how long PostgreSQL stays down
BACK_WITHIN_S = 60  # the run ends or resumes within a minute of the database being back


def wait_for(check: Callable[[], Any], timeout: float, what: str, app: AppProcess) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what}\n{app.output()[-6000:]}"
            )
        time.sleep(0.2)


def runs(url: str) -> list[BackfillJobRun]:
    async def read() -> list[BackfillJobRun]:
        engine = create_engine(url)
        try:
            async with make_sessionmaker(engine)() as session:
                stmt = select(BackfillJobRun).order_by(BackfillJobRun.job_run_id)
                return list((await session.execute(stmt)).scalars())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def readyz(app: AppProcess) -> int:
    try:
        with urllib.request.urlopen(f"{app.url}/readyz", timeout=15) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_outage_process_postgres_restart_mid_run(private_postgres: RestartablePostgres) -> None:
    url = create_postgres_database(private_postgres.base_url)
    workspace = generate(seed=31, users=12, channels=6, messages=900, days=10)
    workdir = new_workdir()
    with FakeSlack(workspace) as fake:
        admin = next(u["id"] for u in workspace.users.values() if u.get("is_primary_owner"))
        settings = app_settings(fake.base_url, fake.bot_token, fake.signing_secret, workdir)
        settings.update(DATABASE_URL=url, LOG_LEVEL="INFO")
        app = AppProcess(settings, workdir)
        try:
            app.wait_healthy()

            def command(text: str) -> str:
                """Send `/backfill text` as the admin; the response_url it will be answered on."""
                response_url = fake.new_response_url(admin, "C0OUTAGE")
                body = slash_command_body(
                    text,
                    team_id=fake.team_id,
                    user_id=admin,
                    channel_id="C0OUTAGE",
                    response_url=response_url,
                )
                status, _ack = app.post(
                    "/slack/events", body, form_headers(body, fake.signing_secret)
                )
                assert status == 200, _ack
                return response_url.rsplit("/", 1)[-1]

            def answer(since: int) -> str | None:
                posts = fake.response_posts[since:]
                return json.dumps(posts[0]["body"]) if posts else None

            # Slow pages: the run is still going when the database stops.
            fake.faults.slow(1.0, method="conversations.history")
            since = len(fake.response_posts)
            command("run days=3")
            assert "started" in wait_for(lambda: answer(since), 30, "the run to start", app)
            wait_for(
                lambda: len(fake.calls_of("conversations.history")) >= 2,
                60,
                "some history pages",
                app,
            )
            first = runs(url)
            assert len(first) == 1 and first[0].status == "running"
            run_id = first[0].job_run_id

            private_postgres.stop()  # pg_ctl stop -m fast
            down_at = time.monotonic()
            since = len(fake.response_posts)
            command("status")
            told = wait_for(lambda: answer(since), 30, "an answer to status", app)
            assert DATABASE_UNAVAILABLE in told and "Traceback" not in told, told
            assert readyz(app) == 503
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            private_postgres.start()

            def ended() -> BackfillJobRun | None:
                try:
                    row = next(r for r in runs(url) if r.job_run_id == run_id)
                except Exception:  # noqa: BLE001 - still coming up
                    return None
                return row if row.status != "running" else None

            fake.faults.clear()
            done = wait_for(
                ended, BACK_WITHIN_S, "the run to end after the database came back", app
            )
            assert done.status == "success", (done.status, done.error_message)
            wait_for(
                lambda: any("Backfill finished" in json.dumps(m) for m in fake.dms(admin)),
                30,
                "the summary DM",
                app,
            )
            assert readyz(app) == 200

            # Nothing stranded: the next run is accepted and ends.
            since = len(fake.response_posts)
            command("run days=1")
            accepted = wait_for(lambda: answer(since), 30, "the next run's answer", app)
            assert f"Run #{run_id + 1} started" in accepted, accepted
            wait_for(
                lambda: all(r.status != "running" for r in runs(url)),
                BACK_WITHIN_S,
                "the next run to end",
                app,
            )
        finally:
            code = app.stop()
            output = app.output()
            shutil.rmtree(workdir, ignore_errors=True)
    assert code == 0, output[-4000:]
    assert output.count("run heartbeat tick failed") == 0, output[-4000:]
    assert output.count("run heartbeats paused") <= 2
    assert "stopped on an internal error" not in output
