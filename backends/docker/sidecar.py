"""Moved: the egress sidecar is ``backends.egress.sidecar`` now (both backends use it).

Only ``REVISION`` is left here, for ``backends.probes`` (the room of the parallel H22e
work), which imports it from this path; once the probes name ``backends.egress.sidecar``,
this module goes.
"""

from __future__ import annotations

from backends.egress.sidecar import REVISION

__all__ = ["REVISION"]
