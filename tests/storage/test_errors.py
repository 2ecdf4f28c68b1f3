"""The one error boundary: HTTP answers of /api/v2/write and network failures classified.

Status codes and bodies are those InfluxDB 2.x documents for /api/v2/write (204 ok,
400 partial write / unable to parse, 401, 404 bucket not found, 413, 422, 429 and 503
with Retry-After, 500) and RFC 9110 for Retry-After (delta-seconds or HTTP-date); the
``V1_*`` bodies are what influxd 2.7.12 answered on the v1 ``/write`` endpoint.
"""

from __future__ import annotations

import pytest
import requests

from collector.sinks.influx.errors import (
    FatalError,
    InfluxError,
    PartialWriteError,
    RetryableError,
    classify_write_response,
    parse_retry_after,
    translate_exception,
)

TYPE_CONFLICT = (
    '{"code":"invalid","message":"partial write: field type conflict: input field '
    '\\"voltage_rms_v\\" on measurement \\"electrical\\" is type string, already exists '
    'as type float dropped=1"}'
)

V1_TYPE_CONFLICT = (
    '{"code":"unprocessable entity","message":"failure writing points to database: partial '
    'write: field type conflict: input field \\"v\\" on measurement \\"m\\" is type string, '
    'already exists as type float dropped=1"}'
)
V1_BEYOND_RETENTION = (
    '{"code":"unprocessable entity","message":"failure writing points to database: partial '
    'write: dropped 1 points outside retention policy of duration 1h0m0s - oldest point m at '
    '1970-01-01T00:00:01Z dropped because it violates a Retention Policy Lower Bound"}'
)
V1_UNPARSABLE = '{"code":"invalid","message":"unable to parse \'bad line\': invalid field format"}'
V1_NO_BUCKET = '{"code":"not found","message":"no dbrp mapping found"}'
V1_WRONG_PASSWORD = '{"code":"unauthorized","message":"Unauthorized"}'
V1_NO_DB = '{"code":"invalid","message":"missing db"}'


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, V1_TYPE_CONFLICT, PartialWriteError),
        (422, V1_BEYOND_RETENTION, PartialWriteError),
        (400, V1_UNPARSABLE, PartialWriteError),
        (404, V1_NO_BUCKET, FatalError),
        (401, V1_WRONG_PASSWORD, FatalError),
        (400, V1_NO_DB, FatalError),
        (400, TYPE_CONFLICT, PartialWriteError),
        (400, '{"code":"invalid","message":"unable to parse \'x y\': bad timestamp"}',
         PartialWriteError),
        (422, '{"code":"unprocessable entity","message":"points beyond retention policy"}',
         PartialWriteError),
        (413, '{"code":"request too large"}', PartialWriteError),
        (400, '{"code":"invalid","message":"invalid precision \\"xs\\""}', FatalError),
        (401, '{"code":"unauthorized","message":"unauthorized access"}', FatalError),
        (403, "", FatalError),
        (404, '{"code":"not found","message":"bucket \\"raw\\" not found"}', FatalError),
        (500, '{"code":"internal error","message":"engine: cache-max-memory-size exceeded"}',
         RetryableError),
        (502, "", RetryableError),
        (503, "", RetryableError),
        (429, "", RetryableError),
    ],
)
def test_write_status_classification(status: int, body: str, expected: type) -> None:
    with pytest.raises(expected) as info:
        classify_write_response(status, {}, body)
    assert f"HTTP {status}" in str(info.value)


def test_success_does_not_raise() -> None:
    classify_write_response(204, {}, "")


def test_retry_after_seconds_is_carried() -> None:
    with pytest.raises(RetryableError) as info:
        classify_write_response(429, {"Retry-After": "7"}, "")
    assert info.value.retry_after_s == 7.0


def test_retry_after_http_date() -> None:
    # RFC 9110 example date; 30 s after "now".
    now = 784111777.0 - 30.0  # Sun, 06 Nov 1994 08:49:37 GMT
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now_s=now) == pytest.approx(30.0)
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_network_errors() -> None:
    assert isinstance(translate_exception(requests.ConnectionError("refused"), "w"),
                      RetryableError)
    assert isinstance(translate_exception(requests.ReadTimeout("slow"), "w"), RetryableError)
    assert isinstance(translate_exception(requests.exceptions.InvalidURL("x"), "w"), FatalError)
    assert issubclass(PartialWriteError, InfluxError)
