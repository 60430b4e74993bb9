"""The broker's metering: which responses it reads, the usage log it keeps, and the
budget it enforces (``ledger`` adds up, ``meter`` reads one response).

Every response of the API host to ``POST /v1/messages...`` (messages, count_tokens: every
call Claude Code makes, subagents and title calls included) is read as it streams past
(``Metering.start``), and one line goes to the usage log when it ends, or is cut off
(``Metering.finish``). Before a new Messages request leaves, ``Metering.refusal`` says
whether the agent's budget is spent: then the broker answers it with an API-shaped error
and nothing goes upstream; streams already under way finish.

Stdlib only: it runs in the sidecar beside ``addon.py`` (imported there as ``metering``);
on the host, tests import it as ``backends.egress.metering``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:  # on the host: modules of the package backends.egress
    from backends.egress import ledger, meter
    from backends.egress.sidecar_files import CachedFile, RotatedLog, read_lines
except ImportError:  # in the sidecar: beside this file, imported as top-level modules
    import ledger  # type: ignore[no-redef]
    import meter  # type: ignore[no-redef]
    from sidecar_files import CachedFile, RotatedLog, read_lines  # type: ignore[no-redef]

#: The answer to a Messages request once the budget is spent: 429 with the API's
#: ``rate_limit_error`` shape and ``x-should-retry: false`` (the SDK's own "do not retry").
BUDGET_STATUS = 429
BUDGET_ERROR = "rate_limit_error"
#: The request's model is looked for in this many first bytes of its body.
MODEL_HEAD = 4096


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def metered(method: str, path: str) -> bool:
    """Whether a request to the API host is one whose answer is metered (or refused once
    the budget is spent)."""
    return method == "POST" and path.split("?", 1)[0].startswith("/v1/messages")


def asked_model(body: bytes | None) -> str:
    """The model a request body names (for a stream cut off before it said its own)."""
    if not body:
        return ""
    head = body[:MODEL_HEAD].decode("utf-8", "replace")
    at = head.find('"model"')
    if at < 0:
        return ""
    rest = head[at + 7 :].lstrip().lstrip(":").lstrip()
    return rest[1:].split('"', 1)[0] if rest.startswith('"') else ""


class Metering:
    """One sidecar's usage log, its totals and its budget file."""

    def __init__(self, directory: Path) -> None:
        path = directory / ledger.USAGE_FILE
        self.ledger = ledger.Ledger().read(read_lines(path), time.time())
        self.log = RotatedLog(
            path, ledger.USAGE_MAX_BYTES, header=lambda: self.ledger.carry_line(_now())
        )
        self.budget_file = CachedFile(directory / ledger.BUDGET_FILE)
        self._spent: tuple[Any, float] | None = None

    def start(self, *, path: str, status: int, headers: dict[str, str]) -> meter.ResponseMeter:
        """A meter for one response (``headers``: its headers, names lower-case)."""
        return meter.ResponseMeter(
            path=path,
            status=status,
            content_type=headers.get("content-type", ""),
            encoding=headers.get("content-encoding", ""),
            request_id=headers.get("request-id", ""),
        )

    def finish(
        self, reading: meter.ResponseMeter, *, complete: bool, request: bytes | None
    ) -> None:
        """Write ``reading``'s line to the usage log and count it (never raises: a line
        that cannot be written is lost, the traffic is not)."""
        try:
            line = reading.record(ts=_now(), complete=complete, model_asked=asked_model(request))
            self.log.write(json.dumps(line, sort_keys=True))
            self.ledger.add_line(line)
        except Exception:  # metering never breaks the sidecar
            pass

    def budget(self) -> ledger.Budget:
        """The budget as its file says now."""
        return ledger.Budget.from_json(self.budget_file.read())

    def spent(self, budget: ledger.Budget, now: float) -> float:
        """USD spent in ``budget``'s period (remembered until a new line or a new period)."""
        start = ledger.period_start(budget.period, now, budget.utc_offset)
        key = (self.ledger.version, budget, start)
        if self._spent is None or self._spent[0] != key:
            self._spent = (key, self.ledger.spent(budget, now))
        return self._spent[1]

    def refusal(self, agent: str) -> tuple[int, bytes, dict[str, str]] | None:
        """The answer to a new Messages request when ``agent``'s budget is spent (status,
        body, headers); None when it may go."""
        budget = self.budget()
        if budget.limit_usd is None or budget.factor is None:
            return None
        spent = self.spent(budget, time.time())
        if spent < budget.limit_usd:
            return None
        words = ledger.budget_text(budget.limit_usd, budget.period)
        message = (
            f"bottle-dash: agent {agent} has spent ${spent:.2f} of its budget of ${words} "
            f"(USD). Raise it with `bottle-dash budget {agent} <USD>/<day|week>` "
            "or in the dashboard; nothing was sent."
        )
        body = {"type": "error", "error": {"type": BUDGET_ERROR, "message": message}}
        headers = {
            "content-type": "application/json",
            "x-should-retry": "false",
            "x-bottle-egress": "budget",
        }
        return BUDGET_STATUS, json.dumps(body).encode(), headers


class MeteredHooks:
    """The broker's hooks that meter (mixed into ``addon.EgressBroker``, which sets
    ``_metering`` and has ``current``, the policy)."""

    _metering: Metering
    current: Any

    def meter_response(self, flow: Any) -> None:
        """Read an API response as it streams to the client: each chunk passes on as it
        came, the meter only looks at it."""
        req, response = flow.request, flow.response
        if not (self.current.is_api(req.host, req.port) and metered(req.method, req.path)):
            return
        reading = self._metering.start(
            path=req.path,
            status=response.status_code,
            headers={k.lower(): v for k, v in response.headers.items()},
        )
        flow.metadata["bottle-dash-meter"] = reading

        def passing(chunk: bytes) -> bytes:
            reading.feed(chunk)  # never raises
            return chunk

        response.stream = passing

    def response(self, flow: Any) -> None:
        """The response ended: its usage line."""
        self._metered(flow, complete=True)

    def error(self, flow: Any) -> None:
        """The flow broke off (a stream cut midway): the line of what it carried."""
        self._metered(flow, complete=False)

    def _metered(self, flow: Any, *, complete: bool) -> None:
        reading = flow.metadata.pop("bottle-dash-meter", None)
        if reading is not None:
            body = None if flow.request.stream else flow.request.raw_content
            self._metering.finish(reading, complete=complete, request=body)
