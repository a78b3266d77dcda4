"""Schedule validation: cron expressions, time zones, days, channel ids, descriptions, DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blocks.cron_words import describe_cron
from scheduler.cron import (
    MIN_INTERVAL_MINUTES,
    ScheduleError,
    ScheduleSpec,
    build_trigger,
    next_fire_time,
    validate_schedule,
)

USE_5_FIELDS = "Use 5 fields: minute hour day-of-month month day-of-week"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# --- cron expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "stored"),
    [
        ("0 2 * * *", "0 2 * * *"),
        ("  0   2 * *   * ", "0 2 * * *"),
        ("*/15 * * * *", "*/15 * * * *"),
        ("0 * * * *", "0 * * * *"),
        ("30 6 * * 1-5", "30 6 * * 1-5"),
        ("0 2 * * mon-fri", "0 2 * * mon-fri"),
        ("0 2 1,15 * *", "0 2 1,15 * *"),
        ("0 0 1 JAN *", "0 0 1 JAN *"),
        ("0 3 * * 7", "0 3 * * 7"),
        ("*/45 * * * *", "*/45 * * * *"),
        ("0 0 29 2 *", "0 0 29 2 *"),
        ("5/20 * * * *", "5/20 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_cron_valid_expressions_are_accepted_and_stored_single_spaced(
    cron: str, stored: str
) -> None:
    spec = validate_schedule(cron)
    assert spec == ScheduleSpec(stored, "UTC", 7, True, ())


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("", "The cron expression is empty"),
        ("   ", "The cron expression is empty"),
        ("0 25 * * *", 'is not a valid cron expression: hour must be 0–23, got "25"'),
        ("60 2 * * *", "minute must be 0–59"),
        ("0 2 0 * *", "day-of-month must be 1–31"),
        ("0 2 * 13 *", "month must be 1–12 or jan–dec"),
        ("0 2 * * 8", "day-of-week must be 0–7 (0 or 7 is Sunday) or sun–sat"),
        ("0 2 * * funday", "day-of-week must be 0–7"),
        ("0 0 2 * * *", "it has 6 fields; seconds and years are not supported"),
        ("0 0 2 * * * 2030", "it has 7 fields"),
        ("0 2 * *", "it has 4 fields, not 5"),
        ("banana", "it has 1 field, not 5"),
        ("0 2 ? * *", "the special characters ? L W # are not supported"),
        ("0 2 L * *", "the special characters ? L W # are not supported"),
        ("0 2 * * 1#2", "the special characters ? L W # are not supported"),
        ("5-1 * * * *", 'the minute range "5-1" goes backwards'),
        ("*/0 * * * *", "the minute step"),
        ("0 2 1 * 1", "restricts both day-of-month and day-of-week"),
        ("0 0 30 2 *", "it never fires"),
        ("0 0 31 4,6,9,11 *", "it never fires"),
        ("1,,2 * * * *", "is not understood"),
        ("@reboot", "the shorthands are"),
    ],
)
def test_cron_invalid_expressions_say_what_is_wrong_and_what_is_accepted(
    cron: str, says: str
) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_schedule(cron)
    message = str(info.value)
    assert says in message
    assert USE_5_FIELDS in message and '"0 2 * * *" (every day at 02:00)' in message


def test_cron_the_example_message_reads_in_full() -> None:
    with pytest.raises(ScheduleError) as info:
        validate_schedule("0 25 * * *")
    assert str(info.value) == (
        '"0 25 * * *" is not a valid cron expression: hour must be 0–23, got "25". Use 5 fields: '
        'minute hour day-of-month month day-of-week, e.g. "0 2 * * *" (every day at 02:00).'
    )


@pytest.mark.parametrize(
    ("cron", "every"),
    [
        ("* * * * *", "every minute"),
        ("*/5 * * * *", "every 5 minutes"),
        ("*/10 * * * *", "every 10 minutes"),
        ("0,14 * * * *", "every 14 minutes"),
        ("0,50 23,0 * * *", "every 10 minutes"),  # 23:50 → 00:00 across midnight
    ],
)
def test_cron_more_often_than_the_minimum_interval_is_refused(cron: str, every: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_schedule(cron)
    message = str(info.value)
    assert f"fires as often as {every}" in message
    assert f"the shortest interval allowed is {MIN_INTERVAL_MINUTES} minutes" in message
    assert '"*/15 * * * *"' in message


@pytest.mark.parametrize("cron", ["*/15 * * * *", "0,15,30,45 * * * *", "0,45 * * * *"])
def test_cron_exactly_the_minimum_interval_is_accepted(cron: str) -> None:
    assert validate_schedule(cron).cron_expression == cron


@pytest.mark.parametrize(
    ("cron", "weekday"),
    [
        ("0 2 * * 0", "Sunday"),
        ("0 2 * * 7", "Sunday"),
        ("0 2 * * sun", "Sunday"),
        ("0 2 * * 1", "Monday"),
        ("0 2 * * MON", "Monday"),
        ("0 2 * * 6", "Saturday"),
    ],
)
def test_cron_day_of_week_uses_standard_numbering_not_apschedulers(cron: str, weekday: str) -> None:
    # APScheduler 3's from_crontab reads 0 as Monday; admins write standard cron (0 = Sunday).
    spec = validate_schedule(cron)
    fire = next_fire_time(spec, utc(2025, 1, 1))  # a Wednesday
    assert fire is not None and fire.strftime("%A") == weekday
    assert weekday in describe_cron(spec.cron_expression)


def test_cron_weekday_ranges_and_steps_follow_standard_cron() -> None:
    spec = validate_schedule("0 2 * * 1-5")
    fires = []
    after = utc(2025, 1, 4)  # Saturday
    for _ in range(5):
        fire = next_fire_time(spec, after)
        assert fire is not None
        fires.append(fire.strftime("%a"))
        after = fire
    assert fires == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    # */2 from Sunday: Sun, Tue, Thu, Sat (APScheduler's own numbering would give Mon, Wed, …).
    assert "day_of_week='sun,tue,thu,sat'" in str(build_trigger(validate_schedule("0 2 * * */2")))


# --- time zones, days, channels ---------------------------------------------------------------


@pytest.mark.parametrize(
    "tz", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/UTC"]
)
def test_timezone_iana_names_are_kept_as_given(tz: str) -> None:
    assert validate_schedule("0 2 * * *", tz).timezone == tz


@pytest.mark.parametrize(
    ("tz", "says"),
    [
        ("Mars/Olympus", '"Mars/Olympus" is not a time zone I know'),
        ("europe/paris", 'Did you mean "Europe/Paris"?'),
        ("", "The time zone is empty"),
        ("../../etc/passwd", "is not a time zone I know"),
        ("localtime", "is not a time zone I know"),
        ("+02:00", "is not a time zone I know"),
    ],
)
def test_timezone_unknown_names_are_refused(tz: str, says: str) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_schedule("0 2 * * *", tz)
    assert says in str(info.value)
    assert '"Europe/Paris"' in str(info.value)


@pytest.mark.parametrize(("days", "stored"), [(1, 1), (7, 7), (365, 365), ("30", 30), (" 14 ", 14)])
def test_days_whole_numbers_from_1_to_365(days: object, stored: int) -> None:
    assert validate_schedule("0 2 * * *", days=days).days_to_backfill == stored


@pytest.mark.parametrize("days", [0, -1, 366, 1.5, True, "seven", "", None, "٣"])
def test_days_out_of_range_or_not_whole_are_refused(days: object) -> None:
    with pytest.raises(ScheduleError, match="days must be a whole number from 1 to 365"):
        validate_schedule("0 2 * * *", days=days)


def test_channels_empty_means_all_channels() -> None:
    for empty in (None, [], (), "", " , "):
        spec = validate_schedule("0 2 * * *", channel_ids=empty)
        assert spec.include_all_channels and spec.channel_ids == ()


def test_channels_ids_are_kept_in_order_without_duplicates() -> None:
    spec = validate_schedule("0 2 * * *", channel_ids=["C0123ABCD", "G0456EFGH", "C0123ABCD"])
    assert not spec.include_all_channels
    assert spec.channel_ids == ("C0123ABCD", "G0456EFGH")
    assert validate_schedule("0 2 * * *", channel_ids="C0001, C0002").channel_ids == (
        "C0001",
        "C0002",
    )


@pytest.mark.parametrize("bad", ["#general", "general", "c0123abcd", "U0123ABCD", "C", "C01 23"])
def test_channels_not_shaped_like_slack_ids_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleError, match="is not a Slack channel id; channel ids look like"):
        validate_schedule("0 2 * * *", channel_ids=[bad])


def test_channels_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(ScheduleError):
        validate_schedule("0 2 * * *", channel_ids=[1, 2])
    with pytest.raises(ScheduleError):
        validate_schedule("0 2 * * *", channel_ids=42)


# --- descriptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "description"),
    [
        ("0 2 * * *", "At 02:00"),
        ("30 14 * * *", "At 14:30"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 2 * * 1-5", "At 02:00, Monday through Friday"),
        ("0 2 * * 0", "At 02:00, only on Sunday"),
        ("0 0 1 * *", "At 00:00, on day 1 of the month"),
        ("@daily", "At 00:00"),
    ],
)
def test_describe_cron_is_human_readable_and_24_hour(cron: str, description: str) -> None:
    assert describe_cron(cron) == description


def test_describe_cron_never_raises() -> None:
    assert describe_cron("not a cron") == "cron not a cron"


# --- next fire times and DST ------------------------------------------------------------------


def _fires(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(n):
        fire = next_fire_time(spec, after)
        assert fire is not None and fire.tzinfo is UTC
        out.append(fire)
        after = fire
    return out


def test_next_fire_time_is_strictly_after_and_aware_utc() -> None:
    spec = validate_schedule("0 2 * * *")
    assert next_fire_time(spec, utc(2025, 1, 1, 2, 0)) == utc(2025, 1, 2, 2, 0)
    assert next_fire_time(spec, utc(2025, 1, 1, 1, 59, 59, 999999)) == utc(2025, 1, 1, 2, 0)
    with pytest.raises(ValueError):
        next_fire_time(spec, datetime(2025, 1, 1))


def test_next_fire_time_in_the_schedules_time_zone() -> None:
    spec = validate_schedule("0 2 * * *", "America/New_York")
    assert next_fire_time(spec, utc(2025, 1, 1)) == utc(2025, 1, 1, 7, 0)  # EST, UTC-5
    assert next_fire_time(spec, utc(2025, 7, 1)) == utc(2025, 7, 1, 6, 0)  # EDT, UTC-4


def test_dst_spring_forward_paris_a_skipped_wall_time_fires_once_at_the_old_offset() -> None:
    # 2025-03-30: clocks go 02:00 CET → 03:00 CEST, so 02:30 does not exist that night.
    # APScheduler keeps the pre-change offset: 02:30+01:00 = 01:30 UTC (03:30 on the clock).
    spec = validate_schedule("30 2 * * *", "Europe/Paris")
    assert _fires(spec, utc(2025, 3, 28, 12), 4) == [
        utc(2025, 3, 29, 1, 30),  # 02:30 CET
        utc(2025, 3, 30, 1, 30),  # the skipped 02:30
        utc(2025, 3, 31, 0, 30),  # 02:30 CEST
        utc(2025, 4, 1, 0, 30),
    ]


def test_dst_fall_back_paris_a_repeated_wall_time_fires_twice() -> None:
    # 2025-10-26: clocks go 03:00 CEST → 02:00 CET, so 02:30 happens twice; APScheduler 3
    # fires at both (two distinct fire times, hence two claim keys).
    spec = validate_schedule("30 2 * * *", "Europe/Paris")
    assert _fires(spec, utc(2025, 10, 24, 12), 5) == [
        utc(2025, 10, 25, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 0, 30),  # 02:30 CEST, first pass
        utc(2025, 10, 26, 1, 30),  # 02:30 CET, second pass
        utc(2025, 10, 27, 1, 30),
        utc(2025, 10, 28, 1, 30),
    ]
    # From between the two passes, the next fire is the second one.
    assert next_fire_time(spec, utc(2025, 10, 26, 0, 45)) == utc(2025, 10, 26, 1, 30)


def test_dst_hourly_schedule_never_fires_closer_than_the_minimum_interval() -> None:
    spec = validate_schedule("*/15 * * * *", "Europe/Paris")
    for start in (utc(2025, 3, 29, 23), utc(2025, 10, 25, 23)):
        fires = _fires(spec, start, 24)
        gaps = {b - a for a, b in itertools.pairwise(fires)}
        assert gaps == {timedelta(minutes=15)}


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(cron=st.text(max_size=40), tz=st.text(max_size=30), days=st.text(max_size=6), ch=st.text())
def test_validate_schedule_arbitrary_strings_raise_only_schedule_error(
    cron: str, tz: str, days: str, ch: str
) -> None:
    try:
        validate_schedule(cron, tz, days, ch)
    except ScheduleError as exc:
        assert str(exc)


_cron_field = st.sampled_from(
    ["*", "0", "1", "5", "7", "12", "1-5", "*/2", "1,3", "0-30/15", "jan", "mon"]
)


@settings(max_examples=400, deadline=None)
@given(
    fields=st.lists(_cron_field, min_size=5, max_size=5),
    tz=st.sampled_from(["UTC", "Europe/Paris"]),
)
def test_validate_schedule_cron_like_strings_raise_only_schedule_error_and_valid_ones_describe(
    fields: list[str], tz: str
) -> None:
    try:
        spec = validate_schedule(" ".join(fields), tz)
    except ScheduleError:
        return
    assert not describe_cron(spec.cron_expression).startswith("cron ")
    assert next_fire_time(spec, utc(2025, 1, 1)) is not None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cron": "0 25 * * *"}, "cron"),
        ({"cron": "* * * * *"}, "cron"),
        ({"cron": ""}, "cron"),
        ({"cron": "0 2 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "0 2 * * *", "days": 0}, "days"),
        ({"cron": "0 2 * * *", "channel_ids": ["general"]}, "channels"),
    ],
)
def test_cron_errors_name_the_input_at_fault(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ScheduleError) as err:
        validate_schedule(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_schedule_channels_are_capped() -> None:
    from blocks.limits import MAX_CHANNELS

    at_cap = [f"C{i:08d}" for i in range(MAX_CHANNELS)]
    assert validate_schedule("0 2 * * *", "UTC", 7, at_cap).channel_ids == tuple(at_cap)
    with pytest.raises(ScheduleError) as refused:
        validate_schedule("0 2 * * *", "UTC", 7, at_cap + ["C99999999"])
    assert refused.value.field == "channels" and f"at most {MAX_CHANNELS}" in str(refused.value)
