"""`python -m app run | migrate | rotate-key`: parse the command, load settings once, map failures
to exit codes.

Exit codes: 0 done (or stopped by a signal), 1 a runtime failure, 2 a missing or malformed setting.
Failures print one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from app.logs import configure_logging
from app.settings import Settings, SettingsError, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_SETTINGS = 0, 1, 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m app", description="Backfill: a searchable copy of a Slack workspace."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="serve Slack (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)"
    )
    commands.add_parser("migrate", help="bring the database schema up to date and exit")
    commands.add_parser(
        "rotate-key",
        help="re-encrypt every stored token with the first key of TOKEN_ENCRYPTION_KEY",
    )
    # `demo` has options of its own (app/demo.py); main() hands them over before parsing here.
    commands.add_parser("demo", help="the whole app against a local Slack emulator (--help)")
    return parser.parse_args(argv)


def secrets_of(settings: Settings) -> list[str]:
    keys = settings.token_encryption_key
    return [
        s
        for s in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.slack_client_secret,
            keys,
            # Each key alone too: a line may hold one without the others.
            *(keys.split(",") if keys else ()),
        )
        if s and s.strip()
    ]


async def rotate_key(settings: Settings) -> int:
    """Migrate, then re-encrypt every stored token under the first key, in one transaction;
    how many installations hold a token. A token no key decrypts changes nothing."""
    from app.runtime import migrate_database
    from db.installations import rotate_keys
    from db.session import create_engine, make_sessionmaker
    from db.token_crypto import TokenCipher

    assert settings.token_encryption_key is not None  # check_modes() in multi-workspace mode
    await migrate_database(settings)
    engine = create_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            return await rotate_keys(session, TokenCipher(settings.token_encryption_key))
    finally:
        await engine.dispose()


def run_demo(demo_args: list[str]) -> int:
    """The demo makes its own settings (fakeslack's token, a demo data folder); quiet logs."""
    from app import demo

    configure_logging(os.environ.get("LOG_LEVEL", "WARNING").upper(), [])
    try:
        return demo.main(demo_args)
    except KeyboardInterrupt:
        return EXIT_OK
    except SettingsError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_SETTINGS


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        return run_demo(argv[1:])
    args = parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            settings.require_for_run()
        if args.command == "rotate-key" and not settings.multi_workspace:
            raise SettingsError(
                "SLACK_CLIENT_ID", "is required by rotate-key (multi-workspace mode)"
            )
    except SettingsError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    configure_logging(settings.log_level, secrets_of(settings), settings.log_format)

    from app.runtime import StartupError, migrate_database, serve
    from db.token_crypto import TokenDecryptError

    try:
        if args.command == "run":
            asyncio.run(serve(settings))
        elif args.command == "rotate-key":
            count = asyncio.run(rotate_key(settings))
            print(
                f"backfill: re-encrypted the tokens of {count} installation(s) with the first key"
            )
        else:
            asyncio.run(migrate_database(settings))
            print("backfill: database is up to date", file=sys.stderr)
    except StartupError as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except TokenDecryptError as exc:
        print(f"backfill: {args.command}: {exc}; nothing was changed", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK
    except Exception as exc:
        import logging

        logging.getLogger("backfill").error("fatal error", exc_info=exc)
        print(f"backfill: failed: {type(exc).__name__}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
