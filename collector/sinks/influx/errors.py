"""The one place where HTTP answers and ``requests`` exceptions become our error classes.

* :class:`RetryableError` - the batch is fine, InfluxDB is not (connection refused,
  timeout, 5xx, 429/503 with an optional Retry-After): retry with backoff, then spool.
* :class:`PartialWriteError` - InfluxDB rejected some points of the batch (field type
  conflict, unparsable line, points outside the retention period, a body too large):
  split the batch to find and drop only the bad points.
* :class:`FatalError` - retrying the same request cannot help (bad token, missing
  bucket, malformed request): the writer keeps the data in the spool and says so loudly,
  the admin commands stop with the message.

Nothing outside this module inspects status codes or catches ``requests`` exceptions.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping

import requests


class InfluxError(Exception):
    """Base of the errors this package raises; ``str()`` is a one-line reason."""


class RetryableError(InfluxError):
    """Try again later; ``retry_after_s`` is the server's Retry-After, if it sent one."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PartialWriteError(InfluxError):
    """Some points of the batch were rejected; the batch must be split to find them."""


class FatalError(InfluxError):
    """Repeating the request unchanged cannot succeed."""


class NotFoundError(FatalError):
    """The API object asked for does not exist (HTTP 404 on an API call)."""


# Point-level rejections of InfluxDB 2.x (/api/v2/write and /write answer 400, 413 or 422).
# Only these justify splitting a batch and dropping single points; any other 400
# (bad precision, bad org) would otherwise make us drop every point one by one.
_POINT_LEVEL = re.compile(
    r"partial write|unable to parse|field type conflict|beyond retention|"
    r"max-values-per-tag|invalid field format|invalid tag format|"
    r"missing (tag|field)|bad timestamp|invalid boolean|invalid number",
    re.IGNORECASE,
)


# What a fatal write answer means, for the operator reading the log. /write says
# "no dbrp mapping found" for both a missing bucket and one the credential may not
# write (its bucket lookup is filtered by the credential's permissions).
_WRITE_HINTS = {
    401: "the credential is wrong, deactivated or deleted",
    403: "the credential may not write this bucket",
    404: "no such bucket, or the credential may not write it",
}


def _message(status: int, body: str) -> str:
    text = body.strip()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "message" in parsed:
        text = str(parsed["message"])
    return f"HTTP {status}: {text[:500]}" if text else f"HTTP {status}"


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return max(0.0, when.timestamp() - now)


def classify_write_response(status: int, headers: Mapping[str, str], body: str) -> None:
    """Return for a successful write (2xx); raise the matching error otherwise."""
    if 200 <= status < 300:
        return
    message = _message(status, body)
    if status in (429, 503):
        raise RetryableError(message, parse_retry_after(headers.get("Retry-After")))
    if status >= 500 or status == 408:
        raise RetryableError(message)
    if status == 413 or status == 422:
        raise PartialWriteError(message)
    if status == 400 and _POINT_LEVEL.search(body):
        raise PartialWriteError(message)
    hint = _WRITE_HINTS.get(status)
    raise FatalError(f"{message} ({hint})" if hint else message)


def classify_api_response(status: int, headers: Mapping[str, str], body: str, what: str) -> None:
    """Like :func:`classify_write_response` for admin/query calls (no partial writes)."""
    if 200 <= status < 300:
        return
    message = f"{what}: {_message(status, body)}"
    if status in (429, 503):
        raise RetryableError(message, parse_retry_after(headers.get("Retry-After")))
    if status >= 500 or status == 408:
        raise RetryableError(message)
    if status == 404:
        raise NotFoundError(message)
    raise FatalError(message)


def translate_exception(exc: requests.RequestException, what: str) -> InfluxError:
    """A network-level failure as one of our errors (to be raised ``from exc``)."""
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return RetryableError(f"{what}: {type(exc).__name__}: {exc}")
    # InvalidURL, MissingSchema, TooManyRedirects...: a configuration problem.
    return FatalError(f"{what}: {type(exc).__name__}: {exc}")


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    write: bool = False,
    **kwargs: object,
) -> requests.Response:
    """Perform one HTTP request and translate every failure into an :class:`InfluxError`.

    ``write=True`` classifies the answer as a line-protocol write (partial writes
    possible); otherwise as an API call.
    """
    try:
        resp = session.request(method, url, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException as exc:
        raise translate_exception(exc, what) from exc
    if write:
        classify_write_response(resp.status_code, resp.headers, resp.text)
    else:
        classify_api_response(resp.status_code, resp.headers, resp.text, what)
    return resp
