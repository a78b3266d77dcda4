"""A cron expression in words, for people ("At 02:00, Monday through Friday"), through
cron-descriptor. Pure; imports `blocks.limits` only."""

from __future__ import annotations

from cron_descriptor import CasingTypeEnum, Options, get_description

from blocks.limits import MACROS


def describe_cron(expr: str) -> str:
    """A human-readable, 24-hour description ("At 02:00, Monday through Friday").

    Never raises: an expression cron-descriptor cannot read is returned as "cron <expr>".
    """
    text = " ".join(str(expr).split())
    macro = MACROS.get(text.lower())
    if macro is not None:
        text = macro
    try:
        options = Options(
            casing_type=CasingTypeEnum.Sentence,
            use_24hour_time_format=True,
            locale_code="en_US",
            verbose=False,
        )
        return str(get_description(text, options))
    except Exception:  # noqa: BLE001 - a description is never worth an error
        return f"cron {text}"


__all__ = ["describe_cron"]
