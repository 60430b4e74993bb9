"""The repository copy's keys: ``c`` its changes (the diff screen), and the ones that bring
the work home (``f`` fetch, ``m`` merge, ``p`` pull request), each asking first
(``ConfirmWork``), then running in the agent's action worker like ``up``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bottle_dash.service.copies import diff, fetch, merge, pull_request, record
from bottle_dash.service.rows import AgentRow
from bottle_dash.ui.messages import DiffLoaded
from bottle_dash.ui.screens.agent_actions import AgentActions


class WorkActions(AgentActions):
    """``AgentActions`` and the repository copy's own: fetch, merge, pull request."""

    def _work(self, action: str, question: str, body: Callable[[AgentRow], Any]) -> None:
        row = self._target()
        if row is None:
            return
        rec = record(row.name)
        if rec is None:
            self.notify(f"{row.name} has no repository copy (set repo, then up)", timeout=4)
            return

        def chosen(yes: bool | None) -> None:
            if yes:
                self.start_action(action, row, lambda progress: body(row))

        from bottle_dash.ui.screens.modals import ConfirmWork

        text = question.format(branch=rec["branch"], repo=rec["path"], agent=row.name)
        self.app.push_screen(ConfirmWork(row.name, text), chosen)

    def action_fetch_work(self) -> None:
        """f: fetch the agent's branch into the host repository (asks)."""

        def body(row: AgentRow) -> str:
            repo, branch, oid = fetch(self.service.backend(row.backend), row.name)
            return f"branch {branch} is {oid[:12]} in {repo}"

        self._work("fetch", "Fetch branch {branch} of {agent} into {repo}?", body)

    def action_merge_work(self) -> None:
        """m: merge the fetched branch into the host's current branch (asks)."""

        def body(row: AgentRow) -> str:
            repo, _out = merge(row.name)
            return f"merged into the current branch of {repo}"

        self._work("merge", "Merge {branch} into the current branch of {repo}?", body)

    def action_pull_request(self) -> None:
        """p: push the branch with your remote and open a pull request (asks)."""
        self._work(
            "pr",
            "Push {branch} to origin of {repo} and open a pull request?",
            lambda row: pull_request(row.name),
        )

    def action_changes(self) -> None:
        """c: the diff screen (read in the bottle by a worker, then shown)."""
        row = self.selected
        if row is None:
            return
        if record(row.name) is None:
            self.notify(f"{row.name} has no repository copy (set repo, then up)", timeout=4)
            return
        self.set_status(f"{row.name}: reading its changes…")
        backend = self.service.backend(row.backend)

        def work() -> None:
            self.post_message(DiffLoaded(row.name, diff(backend, row.name)))

        self.dash_workers.run(work, group="diff", name="load_diff", exclusive=True)

    def on_diff_loaded(self, message: DiffLoaded) -> None:
        from bottle_dash.ui.screens.diff import DiffScreen

        self.set_status("")
        self.app.push_screen(DiffScreen(message.diff))
