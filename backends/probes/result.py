"""A probe's verdict: ``Result`` and the outcomes and groups it names.

Apart from ``base`` (the probe vocabulary, which re-exports these): the seal record, and
with it ``ls`` and the dashboard, read results without defining what a probe is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

PASS = "pass"
FAIL = "fail"
NOT_APPLICABLE = "n/a"
OUTCOMES = (PASS, FAIL, NOT_APPLICABLE)

#: Probe groups, in the order the suite runs and reports them.
HOST = "host"
CREDENTIAL = "credential"
NETWORK = "network"
GROUPS = (HOST, CREDENTIAL, NETWORK)


class Result(NamedTuple):
    """One probe's verdict on one bottle; ``fix`` is set on a failure."""

    probe: str
    group: str
    outcome: str
    evidence: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        return cls(**{k: str(data.get(k, "")) for k in cls._fields})
