from __future__ import annotations

import pytest

from collector.timefmt import iso_utc, parse_iso_utc


def test_iso_utc_matches_known_epoch() -> None:
    # 2023-05-12T19:45:25.814Z is 1683920725.814 s after the epoch (date -u -d @1683920725).
    assert iso_utc(1_683_920_725_814_000_000) == "2023-05-12T19:45:25.814000Z"


def test_parse_round_trip_and_offsets() -> None:
    assert parse_iso_utc("2023-05-12T19:45:25.814Z") == 1_683_920_725_814_000_000
    assert parse_iso_utc("2023-05-12T21:45:25.814+02:00") == 1_683_920_725_814_000_000
    assert parse_iso_utc("1970-01-01T00:00:01") == 1_000_000_000


def test_parse_rejects_garbage_with_the_value() -> None:
    with pytest.raises(ValueError, match="yesterday"):
        parse_iso_utc("yesterday")
