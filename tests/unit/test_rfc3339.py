"""The one RFC 3339 reader of both decoding paths, against Python's own datetime arithmetic."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline_kpi.ingest import rfc3339
from hotline_kpi.ingest.events import epoch_us as datetime_epoch_us

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


def spell(moment: datetime, digits: int, t: str, z: str) -> str:
    text = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{t}" + moment.strftime("%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits].ljust(digits, "7")
    offset = moment.utcoffset()
    assert offset is not None
    minutes = offset // timedelta(minutes=1)
    if minutes == 0 and z:
        return text + z
    sign = "-" if minutes < 0 else "+"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 28), timezones=offsets
    ),
    digits=st.integers(0, 9),
    t=st.sampled_from("Tt"),
    z=st.sampled_from(["Z", "z", ""]),
)
def test_every_valid_spelling_reads_as_the_same_instant_as_datetime(
    moment: datetime, digits: int, t: str, z: str
) -> None:
    text = spell(moment, digits, t, z)
    # Digits past the sixth are truncated, never rounded.
    expected = moment.replace(microsecond=int(f"{moment.microsecond:06d}"[:digits].ljust(6, "0")))
    assert rfc3339.epoch_us(text) == datetime_epoch_us(expected)
    assert rfc3339.to_datetime(text) == expected


@given(st.text(alphabet="0123456789-:TtZz+. ", max_size=32))
def test_both_readers_accept_and_refuse_the_same_texts(text: str) -> None:
    try:
        instant = rfc3339.epoch_us(text)
    except ValueError:
        with pytest.raises(ValueError):
            rfc3339.to_datetime(text)
        return
    assert datetime_epoch_us(rfc3339.to_datetime(text)) == instant


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-01T00:00Z",  # seconds are required
        "2026-10-01 00:00:00Z",
        "2026-10-01T00:00:00+0800",
        "2026-10-01T00:00:00+08",
        "2026-10-01T00:00:00",
        "2026-10-01T24:00:00Z",
        "2026-10-01T23:60:00Z",
        "2026-10-01T23:59:61Z",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-10-01T00:00:00.Z",
        "2026-10-01T00:00:00+24:00",
        "2026-10-01T00:00:00+08:60",
        "２０２６-10-01T00:00:00Z",
        "2026-10-01T00:00:00Z ",
        "0001-01-01T00:00:00+23:59",  # a valid text, but before any date of some zones
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_what_is_not_rfc3339_is_refused(text: str) -> None:
    with pytest.raises(rfc3339.TimestampError):
        rfc3339.epoch_us(text)
    with pytest.raises(rfc3339.TimestampError):
        rfc3339.to_datetime(text)


def test_a_leap_second_is_the_last_microsecond_of_its_minute() -> None:
    assert rfc3339.epoch_us("2016-12-31T23:59:60Z") == datetime_epoch_us(
        datetime(2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    )
    assert rfc3339.epoch_us("2016-12-31T23:59:60.5+08:00") == rfc3339.epoch_us(
        "2016-12-31T15:59:59.999999Z"
    )
    assert rfc3339.to_datetime("2028-02-29T23:59:60-00:00").second == 59


@given(
    seen=st.lists(st.text(alphabet="0123456789-:TtZz+. ", max_size=32), max_size=5),
    moment=st.datetimes(
        min_value=datetime(1, 1, 3), max_value=datetime(9999, 12, 28), timezones=offsets
    ),
    digits=st.integers(0, 9),
    tail=st.sampled_from(["", " ", "0", "Z", ":00", "+08:00"]),
)
def test_remembered_parts_read_a_text_as_checking_it_whole_does(
    seen: list[str], moment: datetime, digits: int, tail: str
) -> None:
    # The fast path reads a text from parts remembered from earlier texts (valid or not): it
    # must accept and refuse exactly what the full check does, with the same instant.
    for text in [*seen, spell(moment, digits, "T", "Z")]:
        with contextlib.suppress(ValueError):
            rfc3339.epoch_us(text)
    for text in [spell(moment, digits, "T", "Z") + tail, spell(moment, digits, "t", "") + tail]:
        try:
            expected: int | None = rfc3339._read(text)
        except ValueError:
            expected = None
        try:
            instant: int | None = rfc3339.epoch_us(text)
        except ValueError:
            instant = None
        assert instant == expected
