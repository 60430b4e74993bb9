"""Claude's command line inside a bottle: its arguments, the status hooks and the seeded
``~/.claude.json`` (how claude is held and resumed: ``backends.holder``)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from backends.guest import GUEST_STATUS_DIR

#: The file in the status directory (``guest.GUEST_STATUS_DIR``) that the hooks replace
#: (by rename, so the host never reads half a word).
STATUS_FILE = "state"

#: The words a hook writes, and what each means (``bottle_dash.status`` maps them to the
#: agent's status). Anything else in the file reads as unknown.
WORD_WORKING = "working"
WORD_PERMISSION = "permission"
WORD_QUESTION = "question"
WORD_IDLE = "idle"
WORD_ERROR = "error"
WORD_EXITED = "exited"
STATUS_WORDS = frozenset(
    {WORD_WORKING, WORD_PERMISSION, WORD_QUESTION, WORD_IDLE, WORD_ERROR, WORD_EXITED}
)

#: (hook event, matcher or None, word). Measured with Claude Code 2.1: a command needing
#: approval fires UserPromptSubmit, PreToolUse, PermissionRequest, Notification
#: (``permission_prompt``, ~6 s later), PostToolUse, Stop; StopFailure replaces Stop on an
#: API error; Esc fires none of them (the pane title covers that). Notification matchers
#: match ``notification_type``; PreToolUse ones the tool name (AskUserQuestion and
#: ExitPlanMode wait for the operator's answer, PostToolUse fires once it is given).
STATUS_HOOKS: tuple[tuple[str, str | None, str], ...] = (
    ("SessionStart", None, WORD_IDLE),
    ("UserPromptSubmit", None, WORD_WORKING),
    ("PreToolUse", "AskUserQuestion|ExitPlanMode", WORD_QUESTION),
    ("PermissionRequest", None, WORD_PERMISSION),
    ("Notification", "permission_prompt", WORD_PERMISSION),
    ("Notification", "elicitation_dialog", WORD_QUESTION),
    ("Notification", "idle_prompt", WORD_IDLE),
    ("PostToolUse", None, WORD_WORKING),
    ("Stop", None, WORD_IDLE),
    ("StopFailure", None, WORD_ERROR),
    ("SessionEnd", None, WORD_EXITED),
)
#: Seconds claude gives one status hook (they take milliseconds).
HOOK_TIMEOUT = 5


def has_prompt(prompt: str) -> bool:
    """Whether a prompt counts as non-empty: whitespace alone adds nothing to the system
    prompt, so it gets no ``--append-system-prompt-file`` (same rule for every backend)."""
    return bool(prompt.strip())


#: Where a sealed bottle's hooks send their word: a name no one can register, which its
#: egress sidecar answers itself (``backends.egress.policy.STATUS_HOST``).
STATUS_HOST = "status.bottle-dash.invalid"


def status_hook_command(word: str, status_dir: str = GUEST_STATUS_DIR) -> str:
    """The shell command of one status hook: say ``word``.

    Where the status directory is mounted (an unsealed bottle) it writes a temporary file
    and renames it over the status file (atomic: the host reads one word or the previous
    one). A sealed bottle has no such mount (nothing it writes lands on the host): there
    the write fails and the word goes to the sidecar, ``GET http://STATUS_HOST/<word>``
    through the proxy (curl, else wget), which keeps it. It prints nothing (whatever a
    UserPromptSubmit hook prints is added to claude's context) and always exits 0 (a
    PreToolUse hook exiting 2 would block the tool); with neither way open the pane title
    is the only signal.
    """
    if word not in STATUS_WORDS:
        raise ValueError(f"not a status word: {word!r}")
    tmp = shlex.quote(f"{status_dir}/.{STATUS_FILE}.") + "$$"
    final = shlex.quote(f"{status_dir}/{STATUS_FILE}")
    url = f"http://{STATUS_HOST}/{word}"
    # nc for images with neither curl nor a working wget (busybox's has been seen to crash):
    # the request by hand to the proxy named in $http_proxy.
    raw = f"GET {url} HTTP/1.0\\r\\nHost: {STATUS_HOST}\\r\\n\\r\\n"
    by_hand = (
        f'p=${{http_proxy#*://}}; p=${{p%%/*}}; printf \'{raw}\' | nc -w 3 "${{p%:*}}" "${{p##*:}}"'
    )
    return (
        f"{{ printf %s {word} >{tmp} && mv -f {tmp} {final}; }} >/dev/null 2>&1 || "
        f"{{ curl -sf -m 3 -o /dev/null {url} || {{ {by_hand}; }} || "
        f"wget -q -T 3 -O /dev/null {url}; }} >/dev/null 2>&1; exit 0"
    )


#: Tools whose permission request is a question to the operator, not a command to allow.
QUESTION_TOOLS = ("AskUserQuestion", "ExitPlanMode")


def permission_hook_command(status_dir: str = GUEST_STATUS_DIR) -> str:
    """The PermissionRequest hook: ``question`` when the tool asking is one of
    ``QUESTION_TOOLS`` (measured: AskUserQuestion fires PreToolUse, then PermissionRequest),
    else ``permission``. It reads claude's stdin JSON with a shell pattern only; what the
    agent could put there changes at most which of the two words is written."""
    names = "|".join(
        f'*\'"tool_name":"{tool}"\'*|*\'"tool_name": "{tool}"\'*' for tool in QUESTION_TOOLS
    )
    question = status_hook_command(WORD_QUESTION, status_dir)
    permission = status_hook_command(WORD_PERMISSION, status_dir)
    return (
        f'in=$(cat 2>/dev/null); case "$in" in {names}) {question.removesuffix("; exit 0")};; '
        f"*) {permission.removesuffix('; exit 0')};; esac; exit 0"
    )


def status_settings(status_dir: str = GUEST_STATUS_DIR) -> dict[str, Any]:
    """The ``--settings`` object that installs the status hooks (merged by claude with the
    user's own settings; their hooks still run)."""
    hooks: dict[str, list[dict[str, Any]]] = {}
    for event, matcher, word in STATUS_HOOKS:
        entry: dict[str, Any] = {}
        if matcher is not None:
            entry["matcher"] = matcher
        if event == "PermissionRequest":
            command = permission_hook_command(status_dir)
        else:
            command = status_hook_command(word, status_dir)
        entry["hooks"] = [
            {
                "type": "command",
                "command": command,
                "timeout": HOOK_TIMEOUT,
            }
        ]
        hooks.setdefault(event, []).append(entry)
    return {"hooks": hooks}


def status_settings_arg(status_dir: str = GUEST_STATUS_DIR) -> str:
    """``status_settings`` as the compact JSON text given to ``--settings`` (inline: no file
    to provision, nothing the agent could rewrite)."""
    return json.dumps(status_settings(status_dir), separators=(",", ":"), sort_keys=True)


def claude_args(
    prompt_guest: str,
    prompt_nonempty: bool,
    extra: Sequence[str],
    *,
    status_hooks: bool = False,
) -> list[str]:
    """Arguments for ``claude``: the status hooks (``--settings``) when ``status_hooks``,
    the system-prompt file exactly when the prompt is non-empty, then the agent's own
    ``claude_args``."""
    args: list[str] = []
    if status_hooks:
        args += ["--settings", status_settings_arg()]
    if prompt_nonempty:
        args += ["--append-system-prompt-file", prompt_guest]
    args += list(extra)
    return args


# ----------------------------------------------------------------- ~/.claude.json

#: Claude Code's user state file, in the agent's home.
CLAUDE_JSON = ".claude.json"
#: claude's user settings, relative to the home (its ``.claude`` directory is 0700).
CLAUDE_SETTINGS = ".claude/settings.json"
#: The settings key claude 2.1 writes once the operator accepts the one-time
#: ``--dangerously-skip-permissions`` confirmation (the dialog shows until it is true).
SKIP_PROMPT_KEY = "skipDangerousModePermissionPrompt"
#: The env var whose key claude asks the operator to approve.
API_KEY_ENV = "ANTHROPIC_API_KEY"
#: The theme a fresh bottle starts with (its first run would otherwise ask).
SEED_THEME = "dark"
#: Where the workspace is mounted, the project claude starts in.
SEED_PROJECT = "/workspace"
#: How much of an API key Claude Code remembers when the operator approves it.
API_KEY_TAIL = 20


def seeded_claude_json(
    existing: Mapping[str, Any] | None,
    *,
    api_key: str | None = None,
    project: str = SEED_PROJECT,
) -> dict[str, Any]:
    """``~/.claude.json`` with what a fresh bottle needs to open claude at its prompt,
    merged into ``existing`` (what claude and the agent wrote there since; every other key
    is kept as it is). Measured with Claude Code 2.1.197 and 2.1.332; the keys:

    - ``hasCompletedOnboarding: true``: skips the first-run welcome flow (theme picker,
      login method, security notes);
    - ``theme``: seeded only when absent, so a theme chosen in the bottle stays;
    - ``projects[<project>].hasTrustDialogAccepted: true``: skips "Do you trust the files
      in this folder?" for the workspace (the bottle is the trust boundary, not claude);
    - with an API key in the bottle's env, ``customApiKeyResponses.approved`` holds its
      last 20 characters (and ``rejected`` loses them): claude otherwise asks whether to
      use the key found in ``ANTHROPIC_API_KEY``. It is the key the bottle sees (a
      placeholder when the credential is brokered), never more than its tail.
    """
    data: dict[str, Any] = dict(existing or {})
    data["hasCompletedOnboarding"] = True
    data.setdefault("theme", SEED_THEME)
    projects = data.get("projects")
    projects = dict(projects) if isinstance(projects, Mapping) else {}
    entry = projects.get(project)
    entry = dict(entry) if isinstance(entry, Mapping) else {}
    entry["hasTrustDialogAccepted"] = True
    projects[project] = entry
    data["projects"] = projects
    if api_key:
        tail = api_key[-API_KEY_TAIL:]
        responses = data.get("customApiKeyResponses")
        responses = dict(responses) if isinstance(responses, Mapping) else {}
        approved = [k for k in responses.get("approved") or [] if k != tail]
        rejected = [k for k in responses.get("rejected") or [] if k != tail]
        responses["approved"] = [*approved, tail]
        responses["rejected"] = rejected
        data["customApiKeyResponses"] = responses
    return data


def merge_claude_json(current: str | None, *, api_key: str | None = None) -> bytes:
    """The new text of ``~/.claude.json`` given its ``current`` text (None when absent).
    A file that is not a JSON object is replaced: claude could not read it either."""
    existing = _json_object(current) or None
    return (json.dumps(seeded_claude_json(existing, api_key=api_key), indent=2) + "\n").encode()


def _json_object(current: str | None) -> dict[str, Any]:
    """``current`` as a JSON object, or an empty one (absent, or not an object: claude
    could not read it either)."""
    if current and current.strip():
        try:
            existing = json.loads(current)
        except ValueError:
            return {}
        if isinstance(existing, Mapping):
            return dict(existing)
    return {}


def merge_claude_settings(current: str | None) -> bytes:
    """The new text of ``~/.claude/settings.json`` for a bottle whose claude runs with
    ``--dangerously-skip-permissions``: ``skipDangerousModePermissionPrompt: true`` (what
    accepting claude's one-time confirmation writes, measured with Claude Code 2.1.332),
    so an unattended agent opens at its prompt; every other key is kept."""
    data = _json_object(current)
    data[SKIP_PROMPT_KEY] = True
    return (json.dumps(data, indent=2) + "\n").encode()
