"""Errors located in the config file: ``ConfigError``, the line finder (``Locator``), TOML
syntax errors with their line, and the words an error uses for a value.

Every problem names the file, the line when it can be found, the agent, the key and what
would be valid, then the fix.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A config file problem, located as precisely as it can be.

    ``str()`` gives one headline (file, line, agent, key and what is wrong) and, when
    there is one, a second line with the fix.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None,
        agent: str | None = None,
        key: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.agent = agent
        self.key = key
        self.line = line
        self.fix = fix

    @property
    def headline(self) -> str:
        """``<file>, line N, agent 'x', key 'k': <message>`` (parts that are known)."""
        where = [f"config {self.path}" if self.path else "config"]
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.agent is not None:
            where.append(f"agent {self.agent!r}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        return f"{', '.join(where)}: {self.message}"

    def __str__(self) -> str:
        return self.headline + (f"\n  fix: {self.fix}" if self.fix else "")


class ConfigErrors(ConfigError):
    """Every bad agent of a config file at once (each a ``ConfigError``), with ``partial``:
    the config of the agents that are fine, so ``ls`` and the dashboard still list them.
    It reads as its first error, with the others after it."""

    def __init__(self, errors: list[ConfigError], partial: Any) -> None:
        first = errors[0]
        super().__init__(
            first.message,
            path=first.path,
            agent=first.agent,
            key=first.key,
            line=first.line,
            fix=first.fix,
        )
        self.errors = errors
        #: ``load.Config`` of the good agents.
        self.partial = partial

    @property
    def headline(self) -> str:
        """The first error's headline, and how many more there are."""
        more = len(self.errors) - 1
        return self.errors[0].headline + (f" (and {more} more)" if more else "")

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def parse_toml(text: str, path: Path) -> dict[str, Any]:
    """``text`` as TOML; a syntax error is a ``ConfigError`` at its line and column."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(match.group(1)) if match else None
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg)
        if match:
            what += f" (column {match.group(2)})"
        raise ConfigError(
            f"TOML syntax error: {what}",
            path=path,
            line=line,
            fix="fix the TOML syntax at that line (strings need quotes, tables [name], "
            "keys key = value)",
        ) from None


def unknown_key(
    key: str,
    valid: tuple[str, ...],
    path: Path,
    agent: str | None,
    line: int | None,
    what: str = "keys",
) -> ConfigError:
    """The error for a key that is not one of ``valid``, suggesting the nearest."""
    import difflib  # only for an error message

    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(
        f"unknown key {key!r}; {hint}valid {what}: {', '.join(valid)}",
        path=path,
        agent=agent,
        key=key,
        line=line,
        fix=f"rename it to {close[0]!r}" if close else f"use one of: {', '.join(valid)}",
    )


def type_name(value: Any) -> str:
    """What kind of TOML value ``value`` is, as an error says it ("a string")."""
    names = {
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return names.get(type(value), type(value).__name__)


def describe(value: Any) -> str:
    """``value`` in an error about a list of strings: what kind it is; for a list, what
    its first item that is not a string is (else: that it holds an empty string)."""
    if isinstance(value, list):
        if not value:
            return "an empty list"
        bad = [v for v in value if not isinstance(v, str)]
        return f"a list holding {type_name(bad[0])}" if bad else "a list holding an empty string"
    return type_name(value)


class Locator:
    """Best-effort line numbers for tables and keys in the config text (1-based).

    tomllib does not report where values are, so headers and ``key =`` lines are found by
    scanning; dotted keys and inline tables simply get no line.
    """

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
    _KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=""")

    def __init__(self, text: str) -> None:
        self.tables: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        scope = ""
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                scope = ".".join(_unquote(p) for p in _split_dotted(header.group(1)))
                self.tables.setdefault(scope, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.keys.setdefault((scope, _unquote(key.group(1))), number)

    def header(self, agent: str) -> int | None:
        """The line of ``[agents.<agent>]``."""
        return self.tables.get(f"agents.{agent}")

    def key(self, scope: str, key: str) -> int | None:
        """The line of ``key =`` in the table ``scope`` (``"defaults"``, ``"agents.web"``)."""
        return self.keys.get((scope, key))

    def top(self, key: str) -> int | None:
        """The line that defines the top-level key ``key`` (a table or a value)."""
        found = self.tables.get(key) or self.keys.get(("", key))
        if found is None:
            # `[agent.web]` defines the top-level key "agent" without a header of its own.
            found = min(
                (n for t, n in self.tables.items() if t.startswith(key + ".")), default=None
            )
        return found


def _split_dotted(text: str) -> list[str]:
    return [p.strip() for p in re.findall(r"""("[^"]*"|'[^']*'|[^.]+)""", text)]


def _unquote(part: str) -> str:
    part = part.strip()
    if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
        return part[1:-1]
    return part
