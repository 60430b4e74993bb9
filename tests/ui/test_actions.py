"""Every key and action of the main screen, on FakeBackend + FakePaneHost.

Each test asserts what the backend and the pane host were asked to do, and what the
screen shows.
"""

from __future__ import annotations

from typing import Any

from backends.base import GUEST_PROMPT, NOT_CREATED, RUNNING, STOPPED, LaunchError
from backends.holder import held_argv
from tests.ui.dashkit import (
    build,
    press_on,
    screen_text,
    search_palette,
    select,
    settle,
    spec,
    until,
)


def resumed(bottle: str) -> list[str]:
    return held_argv(["fake-exec", "-t", bottle, "claude"], 0)


def fresh(bottle: str, *args: str) -> list[str]:
    return held_argv(["fake-exec", "-t", bottle, "claude", *args], len(args), fresh=True)


async def test_table_lists_agents_in_every_state(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    # 110 wide: the orphan's claude runs with no pane (its pane column says `detached`).
    async with dash.app.run_test(size=(110, 30)) as pilot:
        await settle(pilot)
        rows = dash.rows()
        assert {n: r.state for n, r in rows.items()} == {
            "alpha": RUNNING,
            "beta": STOPPED,
            "gamma": NOT_CREATED,
            "orphan": RUNNING,
        }
        assert rows["alpha"].pane == "live" and rows["beta"].pane == "dead"
        assert not rows["orphan"].defined
        assert rows["orphan"].pane == "detached" and rows["orphan"].status == "waiting"
        text = screen_text(pilot.app)
        assert "2 running   1 stopped   1 not created   1 undefined" in text
        assert "orphan (undefined)" in text
        # details of the first row, with its pane preview
        assert "cpus 2, memory 4.0G, pids 512" in text
        assert "/srv/alpha" in text
        assert "fresh conversation turn=1" in text
        assert "2h 34m" in text and "12.5" in text and "256.0M" in text


async def test_one_list_per_backend_and_one_tmux_call_per_poll(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.backend.calls.clear()
        dash.panes.calls.clear()
        dash.main.poll_now()
        await settle(pilot)
        assert dash.backend.called("list_bottles") == [("list_bottles",)]
        assert [c for c in dash.panes.calls if c[0] == "panes"] == [("panes",)]


async def test_polls_never_overlap_and_pause_under_a_modal(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        main = dash.main
        polls = main.polls
        main.poll_now()
        main.poll_now()  # while the first runs: coalesced into one follow-up poll
        assert main.dash_workers.poll_again
        await settle(pilot)
        assert main.polls == polls + 2
        await pilot.press("question_mark")
        await pilot.pause()
        dash.backend.calls.clear()
        main.poll_now()  # the timer firing while help is open
        await settle(pilot)
        assert dash.backend.called("list_bottles") == []
        await pilot.press("escape")  # closing the modal catches up at once
        await settle(pilot)
        assert dash.backend.called("list_bottles") == [("list_bottles",)]


async def test_enter_on_live_pane_focuses_it(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "enter")
        assert dash.panes.actions() == [("focus", "%1")]
        assert not dash.backend.called("launch") and not dash.backend.called("start")


async def test_enter_on_stopped_agent_starts_it_and_respawns_dead_pane(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "beta", "enter")
        assert dash.backend.called("start") == [("start", "beta")]
        assert dash.panes.actions() == [("respawn", "%2", resumed("bottle-beta")), ("focus", "%2")]
        assert dash.rows()["beta"].state == RUNNING
        assert dash.rows()["beta"].pane == "live"
        assert "beta: attach: pane %2 respawned" in screen_text(pilot.app)


async def test_enter_on_stopped_agent_lists_each_backend_once(tmp_path: Any) -> None:
    # The escape probes that follow a launch are their own calls (tests/ui/test_seal.py).
    dash = build(tmp_path, everything=True, problem=True, probe_after_up=False)
    smol = dash.extra["smolmachines"]
    smol.unavailable = None
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.backend.calls.clear()
        smol.calls.clear()
        await press_on(pilot, dash, "beta", "enter")
        # The row the poll listed is trusted (start returns the handle); the one listing
        # per backend is the poll that follows the action.
        assert [c[0] for c in dash.backend.calls] == ["start", "list_bottles"]
        assert smol.called("list_bottles") == [("list_bottles",)]
        assert dash.main.polls == 2


async def test_enter_on_running_agent_never_prepares_again(tmp_path: Any) -> None:
    # The escape probes that follow a launch are their own calls (tests/ui/test_seal.py).
    dash = build(tmp_path, everything=True, probe_after_up=False)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.backend.calls.clear()
        await press_on(pilot, dash, "alpha", "R")
        assert dash.backend.called("prepare") == []
        assert dash.backend.called("bottle") == [("bottle", "alpha")]
        # claude's arguments are the recorded plan's (alpha's prompt flag)
        assert dash.panes.actions()[0][2][-2:] == ["--append-system-prompt-file", GUEST_PROMPT]


async def test_enter_on_new_agent_launches_then_splits_a_tagged_pane(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "gamma", "enter")
        assert dash.backend.called("launch") == [("launch", "gamma")]
        assert dash.panes.actions() == [("split", "gamma", resumed("bottle-gamma"))]
        assert dash.rows()["gamma"].state == RUNNING
        assert dash.rows()["gamma"].pane == "live"


async def test_launch_shows_progress_and_the_ui_stays_responsive(tmp_path: Any) -> None:
    import threading

    dash = build(tmp_path, everything=True)
    dash.backend.gate = threading.Event()
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "gamma")
        await pilot.press("enter")
        await until(pilot, lambda: "creating bottle" in screen_text(pilot.app))
        assert dash.rows()["gamma"].busy == "attaching"
        assert "attaching…" in screen_text(pilot.app)
        await pilot.press("question_mark")  # keys still work while the launch waits
        await pilot.pause()
        assert "bottle-dash keys" in screen_text(pilot.app)
        await pilot.press("escape")
        dash.backend.gate.set()
        await settle(pilot)
        assert dash.panes.actions()[0][0] == "split"
        assert dash.rows()["gamma"].busy == ""


async def test_failed_launch_shows_the_error_on_the_agent(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    dash.backend.fail["launch"] = LaunchError("image agent-image:1 not found", fix="build it")
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "gamma", "enter")
        assert dash.panes.actions() == []
        assert "image agent-image:1 not found" in dash.main.errors["gamma"]
        assert "last error image agent-image:1 not found" in screen_text(pilot.app)


async def test_R_restarts_claude_fresh_in_its_pane(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "R")
        assert dash.panes.actions() == [
            ("respawn", "%1", fresh("bottle-alpha", "--append-system-prompt-file", GUEST_PROMPT)),
            ("focus", "%1"),
        ]


async def test_u_brings_the_bottle_up_without_a_pane(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "gamma", "u")
        assert dash.backend.called("launch") == [("launch", "gamma")]
        assert dash.panes.actions() == []
        assert dash.rows()["gamma"].state == RUNNING


async def test_s_stops_the_bottle(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "s")
        assert dash.backend.called("stop") == [("stop", "alpha")]
        assert dash.rows()["alpha"].state == STOPPED
        assert "1 running   2 stopped" in screen_text(pilot.app)
        assert dash.panes.actions() == []  # the pane is left alone


async def test_d_asks_then_removes_with_volumes(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "beta")
        await pilot.press("d")
        await pilot.pause()
        assert "Remove bottle-beta (agent beta)?" in screen_text(pilot.app)
        assert "Also delete its volumes (v): no" in screen_text(pilot.app)
        await pilot.press("v")
        await pilot.pause()
        assert "Also delete its volumes (v): YES" in screen_text(pilot.app)
        await pilot.press("y")
        await settle(pilot)
        assert dash.backend.called("remove") == [("remove", "beta", True)]
        assert dash.rows()["beta"].state == NOT_CREATED
        assert ("close", "%2") in dash.panes.actions()  # its dead pane does not stay


async def test_d_cancelled_removes_nothing(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "beta")
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
        assert dash.backend.called("remove") == []
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")  # without v: the volumes stay
        await settle(pilot)
        assert dash.backend.called("remove") == [("remove", "beta", False)]


async def test_n_defines_a_new_agent_in_the_config_file(tmp_path: Any) -> None:
    dash = build(tmp_path, [spec("alpha")])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.click("#f-name")
        await pilot.press(*"Bad Name")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Bad Name" in screen_text(pilot.app)  # the validator's reason, form still up
        assert not (tmp_path / "config.toml").exists()
        name_box = pilot.app.screen.query_one("#f-name")
        name_box.value = "newbie"
        pilot.app.screen.query_one("#f-image").value = "my-image:2"
        pilot.app.screen.query_one("#f-memory").value = "2g"
        await pilot.press("ctrl+s")
        await settle(pilot)
        text = (tmp_path / "config.toml").read_text()
        assert "[agents.newbie]" in text and "my-image:2" in text
        assert "newbie: new: saved to the config" in screen_text(pilot.app)


async def test_l_shows_the_bottle_logs(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    dash.backend.log_text["alpha"] = "hello from the bottle"
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "l")
        assert "hello from the bottle" in screen_text(pilot.app)
        assert "logs: alpha" in screen_text(pilot.app)
        await pilot.press("escape")
        await pilot.pause()
        assert "hello from the bottle" not in screen_text(pilot.app)


async def test_slash_filters_and_escape_clears(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("slash", "e", "t")
        await pilot.pause()
        assert set(dash.rows()) == {"beta"}
        assert "filter: et" in screen_text(pilot.app)
        await pilot.press("escape")
        await pilot.pause()
        assert set(dash.rows()) == {"alpha", "beta", "gamma", "orphan"}


async def test_t_cycles_themes_and_remembers(tmp_path: Any) -> None:
    from bottle_dash.ui import themes

    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert pilot.app.theme == "bottle-dark"
        await pilot.press("t")
        await pilot.pause()
        assert pilot.app.theme == "bottle-light"
        assert themes.remembered_theme() == "bottle-light"
    again = build(tmp_path, everything=True, theme=None)
    async with again.app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert pilot.app.theme == "bottle-light"


async def test_question_mark_shows_help(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    # Tall enough for every key of the registry at once (the help scrolls when shorter).
    async with dash.app.run_test(size=(100, 50)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        text = screen_text(pilot.app)
        assert "restart claude fresh in its pane" in text
        assert "quit (bottles and panes keep running)" in text


async def test_q_quits_leaving_bottles_and_panes_alone(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
        # Inside the run: leaving run_test() stops the app whether or not q did.
        assert not pilot.app.is_running
    assert not any(c[0] in ("stop", "remove") for c in dash.backend.calls)
    assert dash.panes.actions() == []


async def test_command_palette_runs_the_same_actions(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "alpha")
        await search_palette(pilot, "Stop agent", "Stop its bottle")
        await pilot.press("enter")
        await settle(pilot)
        assert dash.backend.called("stop") == [("stop", "alpha")]


async def test_the_palette_offers_what_the_registry_titles(tmp_path: Any) -> None:
    # Egress is in the palette like every titled action; an action on an agent is offered
    # only while one is selected (with no agents, the palette has none of them).
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "alpha")
        await search_palette(pilot, "Egress log", "add one to the allowlist")
        await pilot.press("enter")
        await until(pilot, lambda: "egress: alpha" in screen_text(pilot.app))
    empty = build(tmp_path / "empty", agents=[])
    async with empty.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await search_palette(pilot, "agent", "Define an agent in the config")
        text = screen_text(pilot.app)
        assert "Stop its bottle" not in text and "Launch if needed" not in text


async def test_without_tmux_attach_runs_claude_in_the_foreground(tmp_path: Any) -> None:
    ran: list[list[str]] = []
    dash = build(
        tmp_path,
        everything=True,
        pane_host=False,
        run_foreground=lambda a: ran.append(list(a)) or 0,
    )
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "beta", "enter")
        assert dash.backend.called("start") == [("start", "beta")]
        assert ran == [resumed("bottle-beta")]
        assert dash.panes.calls == []


async def test_without_tmux_a_missing_exec_binary_is_an_error_not_a_crash(
    tmp_path: Any,
) -> None:
    # The real foreground runner: the fake bottle's argv starts with "fake-exec", which
    # is on no PATH, as a missing docker or smolvm would be.
    dash = build(tmp_path, everything=True, pane_host=False)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "enter")
        # The error reaches the status line a message hop after the worker ends: wait for it.
        await until(
            pilot, lambda: "alpha: attach failed: command not found" in screen_text(pilot.app)
        )
        assert pilot.app.is_running
        text = screen_text(pilot.app)
        assert "alpha: attach failed: command not found: fake-exec" in text
        assert "put it on PATH" in text


async def test_a_failed_worker_is_shown_by_the_one_handler(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)

    def broken(agent: str, *, tail: int = 200) -> str:
        raise LaunchError("the engine lost the log", fix="look at the engine", agent=agent)

    dash.backend.logs = broken  # type: ignore[method-assign]
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "l")
        assert "logs failed: the engine lost the log" in screen_text(pilot.app)
        assert len(pilot.app.screen_stack) == 1  # no logs screen with an empty text

        def poll_breaks(selected: str | None = None) -> Any:
            raise RuntimeError("poller broke")

        dash.app.poller.poll = poll_breaks  # type: ignore[method-assign]
        dash.main.poll_now()
        await settle(pilot)
        assert "poll failed: poller broke" in screen_text(pilot.app)


async def test_empty_state_names_the_config_file(tmp_path: Any) -> None:
    dash = build(tmp_path, [])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "No agents yet." in text
        assert str(tmp_path / "config.toml") in text
        assert "to add one here" in text


async def test_backend_problem_shown_with_fix_while_the_rest_works(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True, problem=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        text = screen_text(pilot.app)
        assert "smolvm CLI not found" in text
        assert "fix: pip install 'bottle-dash[smolvm]'" in text
        await press_on(pilot, dash, "alpha", "s")
        assert dash.backend.called("stop") == [("stop", "alpha")]


async def test_undefined_stopped_bottle_is_started_not_launched(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    dash.backend.add("ghost", STOPPED)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "ghost", "u")
        assert dash.backend.called("start") == [("start", "ghost")]
        assert not dash.backend.called("launch")
        assert dash.rows()["ghost"].state == RUNNING


async def test_cursor_and_sort_survive_a_refresh(tmp_path: Any) -> None:
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = dash.main.query_one("#agents")
        await pilot.press("o", "o")  # sort by name, then by state
        await select(pilot, dash, "gamma")
        dash.backend.bottles.pop("orphan")  # a row goes away
        dash.backend.add("zeta", RUNNING)  # and an undefined one appears
        dash.main.poll_now()
        await settle(pilot)
        assert table.selected_agent == "gamma"
        assert table.sort_column == "state"
        assert set(dash.rows()) == {"alpha", "beta", "gamma", "zeta"}


async def test_a_backend_no_agent_uses_is_listed_less_often(tmp_path: Any) -> None:
    from tests.fakes.backend import FakeBackend

    dash = build(tmp_path, everything=True)
    idle = FakeBackend("smolmachines")
    idle.add("left-behind", STOPPED)
    dash.app.service.injected["smolmachines"] = idle  # type: ignore[index]
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.main.poll_now()
        await settle(pilot)
        assert dash.main.polls == 2
        assert len(dash.backend.called("list_bottles")) == 2  # in use: every tick
        assert len(idle.called("list_bottles")) == 1  # only for bottles left behind
        assert not dash.rows()["left-behind"].defined  # still shown from the last listing


async def test_an_unchanged_poll_redraws_no_header_details_or_problems(tmp_path: Any) -> None:
    from bottle_dash.ui.widgets.chrome import CountsHeader, ProblemsPanel
    from bottle_dash.ui.widgets.details import AgentDetails

    dash = build(tmp_path, everything=True, problem=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        drawn: list[str] = []
        for kind in (CountsHeader, ProblemsPanel, AgentDetails):
            widget = dash.main.query_one(kind)
            original = widget.update
            widget.update = (  # type: ignore[method-assign]
                lambda *a, _o=original, _n=kind.__name__, **k: drawn.append(_n) or _o(*a, **k)
            )
        dash.main.poll_now()
        await settle(pilot)
        assert drawn == []
        dash.backend.stop("alpha")  # a change: the header and the details follow it
        dash.main.poll_now()
        await settle(pilot)
        assert sorted(drawn) == ["AgentDetails", "CountsHeader"]
        assert "1 running   2 stopped" in screen_text(pilot.app)


async def test_e_shows_the_egress_log_and_a_adds_the_host(tmp_path: Any) -> None:
    from backends.egress.plan import egress_log

    (tmp_path / "config.toml").write_text("[agents.alpha]\n")
    log = egress_log("alpha")
    log.parent.mkdir(parents=True)
    log.write_text(
        '{"decision": "deny", "host": "evil.example", "port": 443, "ts": "T2", '
        '"reason": "evil.example:443 is not on the allowlist"}\n'
        '{"decision": "allow", "host": "api.anthropic.com", "port": 443, "ts": "T1"}\n'
    )
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "e")
        await until(pilot, lambda: "egress: alpha" in screen_text(pilot.app))
        text = screen_text(pilot.app)
        assert "evil.example" in text and "api.anthropic.com" in text
        await pilot.press("a")  # the first row: the denied host
        await until(pilot, lambda: "added to egress_allow" in screen_text(pilot.app))
        assert "egress: alpha" not in screen_text(pilot.app)
    assert 'egress_allow = ["evil.example"]' in (tmp_path / "config.toml").read_text()


async def test_e_shows_probe_traffic_apart_and_a_never_allows_it(tmp_path: Any) -> None:
    from backends.egress.plan import egress_log

    (tmp_path / "config.toml").write_text("[agents.alpha]\n")
    log = egress_log("alpha")
    log.parent.mkdir(parents=True)
    log.write_text(
        '{"decision": "deny", "host": "bottle-probe-denied.invalid", "port": 443, '
        '"ts": "T3", "probe": "probe-1"}\n'
    )
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        await press_on(pilot, dash, "alpha", "e")
        await until(pilot, lambda: "egress: alpha" in screen_text(pilot.app))
        assert "(probe) bottle-probe-denied.invalid" in screen_text(pilot.app)
        await pilot.press("a")
        await until(pilot, lambda: "nothing to allow" in screen_text(pilot.app))
        assert "egress: alpha" in screen_text(pilot.app)
    assert "egress_allow" not in (tmp_path / "config.toml").read_text()


async def test_cursor_moves_do_no_io_and_no_layout_pass(tmp_path: Any) -> None:
    # The details of the row under the cursor come from the last poll: a move calls no
    # backend and no tmux; only the resting row's preview is captured, in a worker. The
    # details panel keeps its height between these rows, so it redraws without a layout
    # pass (which would re-render every widget on the screen).
    from bottle_dash.ui.widgets.details import AgentDetails

    dash = build(tmp_path, [spec(f"agent-{i}") for i in range(6)])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        details = dash.main.query_one(AgentDetails)
        layouts: list[bool] = []
        original = details.update
        details.update = (  # type: ignore[method-assign]
            lambda *a, _o=original, **k: layouts.append(k.get("layout", True)) or _o(*a, **k)
        )
        for agent in ("agent-1", "agent-2", "agent-3"):
            dash.panes.add(agent)
        dash.main.poll_now()
        await settle(pilot)
        dash.backend.calls.clear()
        dash.panes.calls.clear()
        layouts.clear()
        for _ in range(3):
            await pilot.press("down")
        assert dash.main.query_one("#agents").selected_agent == "agent-3"
        assert "bottle-agent-3" in screen_text(pilot.app)
        assert layouts and not any(layouts)
        await until(pilot, lambda: bool(dash.panes.calls))
        await settle(pilot)
        assert dash.backend.calls == []
        captured = [c for c in dash.panes.calls if c[0] == "capture"]
        assert captured and captured == dash.panes.calls  # nothing but the preview
        assert captured[-1] == ("capture", dash.panes.pane_map["agent-3"].pane_id)


async def test_a_cursor_move_shows_the_details_in_the_same_frame(tmp_path: Any) -> None:
    # The details follow the cursor within the move itself, not a message hop later: the
    # screen paints the moved cursor as soon as its queue is idle, and details that came
    # with RowHighlighted waited for the next frame (1 to 2 frame periods). One move, one
    # compositor refresh carrying the table and the details.
    import io

    from rich.console import Console
    from rich.text import Text

    from bottle_dash.ui.widgets.details import AgentDetails

    def details_text() -> str:
        console = Console(width=98, file=io.StringIO(), record=True)
        console.print(dash.main.query_one(AgentDetails).content)
        return console.export_text()

    dash = build(tmp_path, [spec(f"agent-{i}") for i in range(6)])
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = dash.main.query_one("#agents")
        assert "bottle-agent-0" in details_text()
        table.action_cursor_down()  # no await: no message has been handled yet
        assert table.selected_agent == "agent-1"
        assert "bottle-agent-1" in details_text()
        # Lines of Text, not a rich Table: the grid cost about twice the CPU per move.
        assert isinstance(dash.main.query_one(AgentDetails).content, Text)
        await settle(pilot)
        frames: list[int] = []
        screen = dash.main
        original = screen._compositor_refresh
        screen._compositor_refresh = (  # type: ignore[method-assign]
            lambda _o=original: frames.append(1) or _o()
        )
        for _ in range(3):
            await pilot.press("down")
            await settle(pilot)
        assert table.selected_agent == "agent-4"
        assert "bottle-agent-4" in screen_text(pilot.app)
        assert len(frames) == 3


async def test_the_details_cut_their_values_to_the_panel_width(tmp_path: Any) -> None:
    # Values too long for the panel end in an ellipsis; a wider terminal shows them whole.
    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(80, 30)) as pilot:
        await settle(pilot)
        await select(pilot, dash, "alpha")
        await until(pilot, lambda: "working: turn in progres…" in screen_text(pilot.app))
        await pilot.resize_terminal(160, 30)
        await until(pilot, lambda: "working: turn in progress, for 5m" in screen_text(pilot.app))


async def test_enter_on_a_running_agent_makes_one_backend_call(tmp_path: Any) -> None:
    # ensure_running on a running row is one attach (the recorded plan, no listing, no
    # prepare); then one panes() lookup and the focus. No poll follows: the bottle is as
    # it was, and the next tick polls.
    dash = build(tmp_path, everything=True, probe_after_up=False)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        dash.backend.calls.clear()
        dash.panes.calls.clear()
        await press_on(pilot, dash, "alpha", "enter")
        assert [c[0] for c in dash.backend.calls] == ["bottle"]
        assert [c[0] for c in dash.panes.calls if c[0] != "capture"] == ["panes", "focus"]


async def test_a_pane_split_for_a_running_agent_shows_at_once_without_a_poll(
    tmp_path: Any,
) -> None:
    # The new pane's claude is starting: a poll now would take the CPU from it. The row
    # shows the pane from the attach itself, and the next tick polls as usual.
    dash = build(tmp_path, everything=True, probe_after_up=False)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        del dash.panes.pane_map["alpha"]  # its pane was closed since the last poll
        polls = dash.main.polls
        dash.backend.calls.clear()
        await press_on(pilot, dash, "alpha", "enter")
        assert [c[:2] for c in dash.panes.actions()] == [("split", "alpha")]
        assert [c[0] for c in dash.backend.calls] == ["bottle"]
        assert dash.main.polls == polls
        pane_id = dash.panes.pane_map["alpha"].pane_id
        assert dash.main.result.panes["alpha"].pane_id == pane_id
        assert dash.rows()["alpha"].pane == "live"
        assert f"alpha: attach: pane {pane_id} split" in screen_text(pilot.app)
        dash.main.poll_now()  # the next tick agrees
        await settle(pilot)
        assert dash.main.result.panes["alpha"].pane_id == pane_id


async def test_ages_turn_on_the_minute_not_on_each_rows_own_second(tmp_path: Any) -> None:
    # The table renders every visible cell again when any cell changes: ages and "for"
    # times (whole minutes) all turn at the minute, not each at its own second.
    from datetime import timedelta

    from tests.ui.dashkit import NOW

    dash = build(tmp_path, everything=True)
    async with dash.app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = dash.main.query_one("#agents")
        updated: list[tuple[object, ...]] = []
        original = table.set_cell  # every cell write goes through it
        table.set_cell = (  # type: ignore[method-assign]
            lambda *a, _o=original, **k: updated.append(a[:2]) or _o(*a, **k)
        )
        dash.main.ctx.now = lambda: NOW + timedelta(seconds=55)  # orphan waited 2m 60s
        dash.main.poll_now()
        await settle(pilot)
        assert updated == []
        dash.main.ctx.now = lambda: NOW + timedelta(seconds=60)
        dash.main.poll_now()
        await settle(pilot)
        assert ("orphan", "status") in updated
