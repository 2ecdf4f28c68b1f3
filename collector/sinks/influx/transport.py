"""How a gzip-compressed batch of line protocol reaches InfluxDB.

The credential decides the endpoint:

* an InfluxDB 2 API token (generated tokens are URL-safe base64, never a ``:``) goes
  to ``/api/v2/write?org=&bucket=`` as ``Authorization: Token``;
* a v1-compatibility credential ``user:password``, the collector's write-only
  credential made by ``gridguard influx setup``, goes to ``/write?db=<bucket>`` with
  HTTP Basic auth. InfluxDB 2 maps ``db`` to the bucket of that name (its virtual
  DBRP mapping) and answers like ``/api/v2/write``: 204, 422 for a partial write,
  400 for an unparsable line, 401, and 404 for a bucket that does not exist or that
  the credential may not write.
"""

from __future__ import annotations

import base64
from typing import Protocol

import requests

from collector.sinks.influx import errors
from collector.sinks.influx.line_protocol import PRECISION


class Transport(Protocol):
    """Sends one batch; raises :mod:`collector.sinks.influx.errors` classes on failure."""

    def write(self, bucket: str, gzip_payload: bytes) -> None: ...

    def close(self) -> None: ...


def is_v1_credential(token: str) -> bool:
    """True for ``user:password``; InfluxDB 2 tokens contain no ``:``."""
    return ":" in token


class HttpTransport:
    """``POST`` with ``Content-Encoding: gzip`` over one keep-alive session."""

    def __init__(
        self, url: str, org: str, token: str, *, timeout_s: float = 10.0,
        session: requests.Session | None = None, verify: bool | str = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://..., got {url!r}")
        base = url.rstrip("/")
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self._session.verify = verify  # False, True or a CA bundle path (private CA)
        self._v1 = is_v1_credential(token)
        if self._v1:
            user, _, password = token.partition(":")
            if not user or not password:
                # never echo the value: it is a secret
                raise ValueError("token: a v1 credential must be user:password with both "
                                 "parts non-empty (as `gridguard influx setup` saves it)")
            self._endpoint = base + "/write"
            basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            authorization = f"Basic {basic}"
            self._params: dict[str, str] = {"precision": PRECISION}
        else:
            self._endpoint = base + "/api/v2/write"
            authorization = f"Token {token}"
            self._params = {"org": org, "precision": PRECISION}
        self._headers = {
            "Authorization": authorization,
            "Content-Encoding": "gzip",
            "Content-Type": "text/plain; charset=utf-8",
        }

    def write(self, bucket: str, gzip_payload: bytes) -> None:
        target = {"db": bucket} if self._v1 else {"bucket": bucket}
        errors.request(
            self._session,
            "POST",
            self._endpoint,
            what=f"write to bucket {bucket!r}",
            write=True,
            params={**self._params, **target},
            data=gzip_payload,
            headers=self._headers,
            timeout=self._timeout_s,
        )

    def close(self) -> None:
        self._session.close()
