"""What an agent spent, read on the host from the usage log its sidecar writes (written
here by the sidecar's own writer, ``metering.Metering``): the summary, ``usage``,
``budget`` and the cost fields of ``ls --json``, through the real CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backends import paths
from backends.egress import ledger
from backends.egress.metering import Metering
from backends.egress.spend import agent_spend, daily, log_lines, summarize
from tests.fakes.cli_run import bd

SONNET = "claude-sonnet-4-5-20250929"
DEAD_DOCKER = {"DOCKER_HOST": "unix:///nonexistent.sock"}


def answer(meter: Metering, model: str, usage: dict[str, int]) -> None:
    reading = meter.start(
        path="/v1/messages", status=200, headers={"content-type": "application/json"}
    )
    reading.feed(json.dumps({"model": model, "id": "msg_1", "usage": usage}).encode())
    meter.finish(reading, complete=True, request=None)


@pytest.fixture
def agent() -> str:
    directory = paths.egress_dir("a")
    directory.mkdir(parents=True)
    meter = Metering(directory)
    answer(meter, SONNET, {"input_tokens": 1_000_000, "output_tokens": 100_000})  # $3 + $1.5
    answer(meter, SONNET, {"cache_read_input_tokens": 1_000_000})  # $0.30
    answer(meter, "claude-stand-in", {"input_tokens": 7})
    return "a"


def test_the_summary_of_a_log(agent: str) -> None:
    spend = agent_spend(agent)
    assert spend.cost_today == pytest.approx(4.8)
    assert spend.cost_total == pytest.approx(4.8)
    assert spend.tokens_today == 2_100_007
    assert spend.requests == 3
    assert spend.by_model[SONNET]["today"]["cache_read"] == 1_000_000
    assert spend.by_model["claude-stand-in"]["total"]["input"] == 7
    assert any("claude-stand-in" in why for why in spend.unpriced)
    assert spend.burn_per_hour == pytest.approx(4.8 * 4)  # all of it in the last 15 min


def test_old_usage_counts_in_the_total_only(agent: str) -> None:
    old = json.dumps({"ts": "2020-01-01T00:00:00+00:00", "model": SONNET, "input": 1_000_000})
    lines = [old, *log_lines(agent)]
    spend = summarize(agent, lines, ledger.Budget(10.0, "week"), time.time())
    assert spend.cost_total == pytest.approx(7.8) and spend.cost_week == pytest.approx(4.8)
    assert spend.budget_spent == pytest.approx(4.8) and spend.budget_used == pytest.approx(0.48)
    rows = daily(lines, 1.0)
    assert [r["date"] for r in rows][0].startswith("20")  # 2019-12-31 or 2020-01-01
    assert rows[0]["cost_usd"] == pytest.approx(3.0)
    assert rows[-1]["cost_usd"] is None  # an unknown model that day


def test_price_none_shows_tokens_without_cost(agent: str) -> None:
    spend = summarize(agent, log_lines(agent), ledger.Budget(factor=None), time.time())
    assert spend.cost_today is None and spend.tokens_today == 2_100_007
    assert 'price = "none"' in spend.unpriced[0]


def test_usage_budget_and_ls_json_through_the_cli(agent: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[agents.a]\nbudget = "20/day"\n\n[agents.b]\n')
    env = {"BOTTLE_DASH_CONFIG": str(config), **DEAD_DOCKER}
    done = bd("usage", "--json", env=env)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["agent"] == "a" and row["input"] == 1_000_007 and row["requests"] == 3
    assert row["cost_usd"] is None and row["models"] == sorted([SONNET, "claude-stand-in"])
    done = bd("usage", "a", env=env)
    assert "COST" in done.stdout and " ?" in done.stdout
    assert bd("usage", "--since", "yesterday", env=env).returncode == 2
    done = bd("budget", "a", "40/day", env=env)
    assert done.returncode == 0, done.stderr
    assert "applied to its sidecar" in done.stdout
    assert 'budget = "40/day"' in config.read_text()
    written = ledger.Budget.from_json(paths.budget_file("a").read_text())
    assert (written.limit_usd, written.period) == (40.0, "day")
    assert paths.budget_file("a").stat().st_mode & 0o777 == 0o600
    bad = bd("budget", "a", "40/month", env=env)
    assert bad.returncode == 3 and "'20/day'" in bad.stderr
    assert 'budget = "40/day"' in config.read_text()  # nothing written
    done = bd("ls", "--json", env=env)
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert rows["a"]["tokens_today"] == 2_100_007
    assert rows["a"]["cost_today_usd"] is None  # the unknown model's share has no price
    assert rows["a"]["budget"] == "40/day" and rows["a"]["budget_spent_usd"] == 4.8
    assert rows["b"]["tokens_today"] == 0 and rows["b"]["cost_total_usd"] == 0.0
