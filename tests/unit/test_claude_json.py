"""The seeded ~/.claude.json: what opens claude at its prompt, merged, never clobbering."""

from __future__ import annotations

import json

from backends.base import GUEST_CLAUDE_JSON
from backends.claude import (
    API_KEY_ENV,
    CLAUDE_JSON,
    CLAUDE_SETTINGS,
    SKIP_PROMPT_KEY,
    merge_claude_json,
    merge_claude_settings,
    seeded_claude_json,
)

KEY = "sk-ant-api03-" + "x" * 40 + "ABCDEFGHIJKLMNOPQRST"


def test_fresh_seed_has_the_keys_that_skip_every_dialog() -> None:
    data = seeded_claude_json(None, api_key=KEY)
    assert data["hasCompletedOnboarding"] is True
    assert data["theme"] == "dark"
    assert data["projects"]["/workspace"]["hasTrustDialogAccepted"] is True
    assert data["customApiKeyResponses"] == {
        "approved": ["ABCDEFGHIJKLMNOPQRST"],
        "rejected": [],
    }
    assert KEY not in json.dumps(data)  # only the tail claude itself keeps
    assert "customApiKeyResponses" not in seeded_claude_json(None)


def test_merge_keeps_what_the_agent_wrote() -> None:
    current = {
        "theme": "light",
        "numStartups": 7,
        "projects": {
            "/workspace": {"allowedTools": ["Bash"], "hasTrustDialogAccepted": False},
            "/other": {"x": 1},
        },
        "customApiKeyResponses": {"approved": ["old"], "rejected": ["ABCDEFGHIJKLMNOPQRST"]},
    }
    merged = json.loads(merge_claude_json(json.dumps(current), api_key=KEY))
    assert merged["theme"] == "light" and merged["numStartups"] == 7
    assert merged["projects"]["/other"] == {"x": 1}
    assert merged["projects"]["/workspace"] == {
        "allowedTools": ["Bash"],
        "hasTrustDialogAccepted": True,
    }
    assert merged["customApiKeyResponses"] == {
        "approved": ["old", "ABCDEFGHIJKLMNOPQRST"],
        "rejected": [],
    }
    # Seeding twice changes nothing more.
    again = merge_claude_json(json.dumps(merged), api_key=KEY)
    assert json.loads(again) == merged


def test_unreadable_or_absent_file_gets_a_fresh_seed() -> None:
    for current in (None, "", "not json", "[1, 2]"):
        assert json.loads(merge_claude_json(current)) == seeded_claude_json(None)


def test_settings_seed_skips_the_bypass_confirmation_and_keeps_the_rest() -> None:
    assert json.loads(merge_claude_settings(None)) == {SKIP_PROMPT_KEY: True}
    current = {"model": "opus", "hooks": {"Stop": []}, SKIP_PROMPT_KEY: False}
    merged = json.loads(merge_claude_settings(json.dumps(current)))
    assert merged == {"model": "opus", "hooks": {"Stop": []}, SKIP_PROMPT_KEY: True}
    for broken in ("", "not json", "[1]"):
        assert json.loads(merge_claude_settings(broken)) == {SKIP_PROMPT_KEY: True}


def test_seeded_files_and_keys_are_the_ones_claude_reads() -> None:
    # Claude Code (2.1.197, 2.1.332) keeps its state in ~/.claude.json and its user
    # settings in ~/.claude/settings.json; it asks to approve the key it finds in
    # ANTHROPIC_API_KEY; accepting the Bypass Permissions confirmation writes this key.
    assert CLAUDE_JSON == ".claude.json"
    assert GUEST_CLAUDE_JSON == "/home/node/.claude.json"
    assert CLAUDE_SETTINGS == ".claude/settings.json"
    assert API_KEY_ENV == "ANTHROPIC_API_KEY"
    assert SKIP_PROMPT_KEY == "skipDangerousModePermissionPrompt"


def test_fresh_seed_is_exactly_what_skips_the_dialogs() -> None:
    # Nothing more than onboarding done, a theme, the workspace trusted and (with a key in
    # the bottle) that key's tail approved: claude owns every other key of its state file.
    assert seeded_claude_json(None) == {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "projects": {"/workspace": {"hasTrustDialogAccepted": True}},
    }
    assert seeded_claude_json(None, api_key=KEY) == {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "projects": {"/workspace": {"hasTrustDialogAccepted": True}},
        "customApiKeyResponses": {"approved": ["ABCDEFGHIJKLMNOPQRST"], "rejected": []},
    }


def test_seeded_files_text_byte_for_byte() -> None:
    # What provisioning writes on both backends: two-space JSON ending in a newline.
    assert merge_claude_json(None) == (
        b'{\n  "hasCompletedOnboarding": true,\n  "theme": "dark",\n  "projects": {\n'
        b'    "/workspace": {\n      "hasTrustDialogAccepted": true\n    }\n  }\n}\n'
    )
    assert merge_claude_settings(None) == b'{\n  "skipDangerousModePermissionPrompt": true\n}\n'


def test_approving_the_key_keeps_the_other_rejected_keys() -> None:
    # Only this key's tail leaves `rejected`: keys the operator turned down stay so.
    current = {
        "customApiKeyResponses": {"approved": [], "rejected": ["zzzzz", "ABCDEFGHIJKLMNOPQRST"]}
    }
    merged = json.loads(merge_claude_json(json.dumps(current), api_key=KEY))
    assert merged["customApiKeyResponses"] == {
        "approved": ["ABCDEFGHIJKLMNOPQRST"],
        "rejected": ["zzzzz"],
    }
