"""How a gzip-compressed batch of line protocol reaches ``/api/v2/write``."""

from __future__ import annotations

from typing import Protocol

import requests

from collector.sinks.influx import errors
from collector.sinks.influx.line_protocol import PRECISION


class Transport(Protocol):
    """Sends one batch; raises :mod:`collector.sinks.influx.errors` classes on failure."""

    def write(self, bucket: str, gzip_payload: bytes) -> None: ...

    def close(self) -> None: ...


class HttpTransport:
    """``POST /api/v2/write`` with ``Content-Encoding: gzip`` over one keep-alive session."""

    def __init__(
        self, url: str, org: str, token: str, *, timeout_s: float = 10.0,
        session: requests.Session | None = None, verify: bool | str = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://..., got {url!r}")
        self._endpoint = url.rstrip("/") + "/api/v2/write"
        self._org = org
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self._session.verify = verify  # False, True or a CA bundle path (private CA)
        self._headers = {
            "Authorization": f"Token {token}",
            "Content-Encoding": "gzip",
            "Content-Type": "text/plain; charset=utf-8",
        }

    def write(self, bucket: str, gzip_payload: bytes) -> None:
        errors.request(
            self._session,
            "POST",
            self._endpoint,
            what=f"write to bucket {bucket!r}",
            write=True,
            params={"org": self._org, "bucket": bucket, "precision": PRECISION},
            data=gzip_payload,
            headers=self._headers,
            timeout=self._timeout_s,
        )

    def close(self) -> None:
        self._session.close()
