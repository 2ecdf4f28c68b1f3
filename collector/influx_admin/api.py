"""A thin client for the InfluxDB 2.x HTTP API used by setup, export, status and stats.

Errors come from :mod:`collector.sinks.influx.errors`, the one translation boundary.
"""

from __future__ import annotations

from typing import Any

import requests

from collector.influx_admin.queries import parse_annotated_csv
from collector.sinks.influx import errors


class InfluxApi:
    """Authenticated calls against one server and organisation."""

    def __init__(
        self, url: str, token: str, org: str, *, timeout_s: float = 60.0,
        session: requests.Session | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http://host:port or https://..., got {url!r}")
        self.url = url.rstrip("/")
        self.org = org
        self._token = token
        self._timeout_s = timeout_s
        self._session = session or requests.Session()
        self._org_id: str | None = None

    def call(self, method: str, path: str, *, what: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self._token}"}
        headers.update(kwargs.pop("headers", None) or {})
        kwargs.setdefault("timeout", self._timeout_s)
        return errors.request(
            self._session, method, self.url + path, what=what, headers=headers, **kwargs
        )

    def json(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        resp = self.call(method, path, what=what, **kwargs)
        return resp.json() if resp.content else None

    def org_id(self) -> str:
        if self._org_id is None:
            body = self.json("GET", "/api/v2/orgs", what=f"looking up org {self.org!r}",
                             params={"org": self.org})
            orgs = body.get("orgs") or []
            if not orgs:
                raise errors.FatalError(f"org: no organisation named {self.org!r} on {self.url}")
            self._org_id = str(orgs[0]["id"])
        return self._org_id

    def query_csv(self, flux: str) -> str:
        resp = self.call(
            "POST", "/api/v2/query", what="Flux query",
            params={"org": self.org},
            json={
                "query": flux, "type": "flux",
                "dialect": {"header": True, "annotations": ["datatype", "group", "default"]},
            },
            headers={"Accept": "application/csv"},
        )
        return resp.text

    def query(self, flux: str) -> list[dict[str, object]]:
        """Rows of all result tables, values typed by the ``#datatype`` annotation."""
        return parse_annotated_csv(self.query_csv(flux))

    def write_lines(self, bucket: str, lines: list[str], precision: str = "ms") -> None:
        self.call(
            "POST", "/api/v2/write", what=f"write to bucket {bucket!r}",
            params={"org": self.org, "bucket": bucket, "precision": precision},
            data="\n".join(lines).encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )

    def close(self) -> None:
        self._session.close()
