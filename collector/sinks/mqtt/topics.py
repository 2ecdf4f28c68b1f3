"""Every MQTT topic GridGuard uses, derived from the prefixes and the site id.

Layout (``<base>`` is ``<topic_prefix>/<site>``)::

    <base>/status                          online / offline (retained, last will)
    <base>/worker/status                   the same for the rule worker (relays, acks)
    <base>/reading/<channel>/<phase>       JSON of the latest values (retained)
    <base>/fault/<event type>/state        ON / OFF (retained)
    <base>/fault/<event type>/attributes   JSON of the latest such event (retained)
    <base>/events                          one JSON object per event (not retained)
    <base>/relay/<circuit>/state           ON / OFF, relay closed / open (retained)
    <base>/relay/<circuit>/request         ON / OFF from Home Assistant's switch (see docs)
    <base>/ack/request                     PRESS from Home Assistant's button (see docs)
    <base>/control                         signed commands (the relays' owner subscribes)
    <base>/control/result                  outcome of each command (not retained)
    <discovery_prefix>/<component>/gridguard_<site>/<object id>/config   HA discovery

``<phase>`` is the phase label of the metrics record: ``A``, ``B``, ``C``, the joined
total (``ABC``), ``G`` for a residual-current channel, or ``-`` when there is none.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

NO_PHASE = "-"
_OBJECT_ID_OK = re.compile(r"^[a-zA-Z0-9_-]+$")
_NOT_OBJECT_ID = re.compile(r"[^a-zA-Z0-9_-]")


def object_id(*parts: str) -> str:
    """Join parts into a discovery object id (Home Assistant allows ``[a-zA-Z0-9_-]``).

    Characters outside that set become ``_``; a short hash of the original keeps two
    ids that differ only in such characters apart.
    """
    raw = "_".join(p for p in parts if p)
    if _OBJECT_ID_OK.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:8]
    return f"{_NOT_OBJECT_ID.sub('_', raw)}_{digest}"


def phase_key(phase: str | None) -> str:
    """Topic level for a metrics record's phase."""
    return phase if phase else NO_PHASE


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one site."""

    topic_prefix: str
    discovery_prefix: str
    site: str

    @property
    def base(self) -> str:
        return f"{self.topic_prefix}/{self.site}"

    @property
    def node_id(self) -> str:
        """Discovery node id: groups this site's config topics (and nothing else's)."""
        return object_id("gridguard", self.site)

    @property
    def availability(self) -> str:
        return f"{self.base}/status"

    @property
    def worker_availability(self) -> str:
        """Availability of the rule worker, which owns the relays and the alert book."""
        return f"{self.base}/worker/status"

    def reading(self, channel: str, phase: str | None) -> str:
        return f"{self.base}/reading/{channel}/{phase_key(phase)}"

    def fault_state(self, event_type: str) -> str:
        return f"{self.base}/fault/{event_type}/state"

    def fault_attributes(self, event_type: str) -> str:
        return f"{self.base}/fault/{event_type}/attributes"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    def relay_state(self, circuit: str) -> str:
        return f"{self.base}/relay/{circuit}/state"

    def relay_request(self, circuit: str) -> str:
        return f"{self.base}/relay/{circuit}/request"

    @property
    def ack_request(self) -> str:
        return f"{self.base}/ack/request"

    @property
    def control(self) -> str:
        return f"{self.base}/control"

    @property
    def control_result(self) -> str:
        return f"{self.base}/control/result"

    @property
    def sync(self) -> str:
        """Private barrier topic used while reading back retained discovery configs."""
        return f"{self.base}/_sync"

    def discovery(self, component: str, obj_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_id}/{obj_id}/config"

    @property
    def discovery_wildcard(self) -> str:
        """All discovery config topics of this site (any component, any object id)."""
        return f"{self.discovery_prefix}/+/{self.node_id}/+/config"

    @property
    def ha_status(self) -> str:
        """Home Assistant's birth / last-will topic."""
        return f"{self.discovery_prefix}/status"
