"""A small reader of git's config format, for the workspace check (``backends.gitscan``):
it must see a setting exactly where git would, so it follows git's own rules
(git-config(1), "CONFIGURATION FILE") rather than a regular expression.

- ``[section]``, ``[section "subsection"]`` (subsection case-sensitive, ``\\"`` and
  ``\\\\`` escaped) and the old ``[section.subsection]`` (subsection lower-cased);
- ``name = value`` and a bare ``name`` (boolean true), on their own line or right after a
  section header (``[core] fsmonitor = x`` is valid git);
- section and variable names case-insensitive; values with ``"…"`` quoting, the escapes
  ``\\n \\t \\b \\" \\\\``, a backslash at the end of a line continuing it, and ``#``/``;``
  comments outside quotes.

Pure: text in, ``Entry`` values out; a line git would reject is skipped (and counted), so
a planted file cannot hide a setting behind an earlier syntax error the way it could from
a parser that gives up.
"""

from __future__ import annotations

from typing import NamedTuple

_ESCAPES = {"n": "\n", "t": "\t", "b": "\b", '"': '"', "\\": "\\"}


class Entry(NamedTuple):
    """One setting: ``section`` and ``name`` lower-cased, ``subsection`` as written (None
    when there is none), ``value`` None for a bare name, ``line`` 1-based."""

    section: str
    subsection: str | None
    name: str
    value: str | None
    line: int

    @property
    def key(self) -> str:
        """``section.subsection.name`` (``section.name`` without a subsection)."""
        if self.subsection is None:
            return f"{self.section}.{self.name}"
        return f"{self.section}.{self.subsection}.{self.name}"


class Parsed(NamedTuple):
    """What one file holds: its settings in order, and the numbers of lines git would
    reject (a planted file is hostile input: they are reported, not fatal)."""

    entries: list[Entry]
    bad_lines: list[int]


def _header(text: str, pos: int) -> tuple[tuple[str, str | None] | None, int]:
    """The section of a header starting at ``text[pos] == '['``; returns it and where the
    line goes on after ``]`` (None when the header is malformed)."""
    end = len(text)
    i = pos + 1
    name_start = i
    while i < end and (text[i].isalnum() or text[i] in "-."):
        i += 1
    name = text[name_start:i]
    if i < end and text[i] == "]":
        if not name:
            return None, i + 1
        if "." in name:  # deprecated [section.subsection]: subsection lower-cased
            section, _, old = name.partition(".")
            return (section.lower(), old.lower()), i + 1
        return (name.lower(), None), i + 1
    if i < end and text[i] in " \t" and name and "." not in name:
        while i < end and text[i] in " \t":
            i += 1
        if i >= end or text[i] != '"':
            return None, i
        i += 1
        sub: list[str] = []
        while i < end and text[i] != '"':
            if text[i] == "\n":
                return None, i
            if text[i] == "\\" and i + 1 < end and text[i + 1] != "\n":
                i += 1
            sub.append(text[i])
            i += 1
        if i + 1 < end and text[i] == '"' and text[i + 1] == "]":
            return (name.lower(), "".join(sub)), i + 2
        return None, i
    return None, i


def _value(text: str, pos: int) -> tuple[str | None, int, int]:
    """The value starting at ``pos`` (after ``=``): returns it, where the next line
    starts, and how many newlines it spanned (continuations); None when malformed."""
    end = len(text)
    out: list[str] = []
    pending_space = ""
    quoted = False
    newlines = 0
    i = pos
    while i < end:
        c = text[i]
        if c == "\n":
            if quoted:
                return None, _next_line(text, i), newlines
            break
        if not quoted and c in "#;":
            i = text.find("\n", i)
            i = end if i < 0 else i
            break
        if c == "\\":
            if i + 1 >= end:
                return None, end, newlines
            nxt = text[i + 1]
            if nxt == "\n":  # continuation: the value goes on on the next line
                newlines += 1
                i += 2
                continue
            if nxt == "\r" and i + 2 < end and text[i + 2] == "\n":
                newlines += 1
                i += 3
                continue
            if nxt not in _ESCAPES:
                return None, _next_line(text, i), newlines
            out.append(pending_space + _ESCAPES[nxt])
            pending_space = ""
            i += 2
            continue
        if c == '"':
            quoted = not quoted
            i += 1
            continue
        if c in " \t\r" and not quoted:
            # Inner whitespace is kept, leading and trailing whitespace is not.
            if out:
                pending_space += c
            i += 1
            continue
        out.append(pending_space + c)
        pending_space = ""
        i += 1
    if quoted:
        return None, _next_line(text, i), newlines
    return "".join(out), (i + 1 if i < end else end), newlines


def _next_line(text: str, pos: int) -> int:
    nl = text.find("\n", pos)
    return len(text) if nl < 0 else nl + 1


def parse(text: str) -> Parsed:
    """Every setting of one git config file's ``text``, in order (see the module doc)."""
    entries: list[Entry] = []
    bad: list[int] = []
    section: tuple[str, str | None] | None = None
    end = len(text)
    i = 0
    line = 1
    if text.startswith("\ufeff"):
        i = 1
    while i < end:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
            continue
        if c in " \t\r":
            i += 1
            continue
        if c in "#;":
            i = _next_line(text, i)
            line += 1
            continue
        if c == "[":
            found, i = _header(text, i)
            if found is None:
                bad.append(line)
                section = None  # git stops at a bad header; settings after it are not its
                i = _next_line(text, i)
                line += 1
                continue
            section = found
            continue  # a setting may follow on the same line
        if not c.isalpha() or section is None:
            bad.append(line)
            i = _next_line(text, i)
            line += 1
            continue
        start = i
        while i < end and (text[i].isalnum() or text[i] == "-"):
            i += 1
        name = text[start:i].lower()
        while i < end and text[i] in " \t\r":
            i += 1
        at = line
        if i >= end or text[i] == "\n" or text[i] in "#;":
            entries.append(Entry(section[0], section[1], name, None, at))
            i = _next_line(text, i) if i < end else end
            line += 1
            continue
        if text[i] != "=":
            bad.append(line)
            i = _next_line(text, i)
            line += 1
            continue
        value, i, spanned = _value(text, i + 1)
        line += 1 + spanned
        if value is None:
            bad.append(at)
            continue
        entries.append(Entry(section[0], section[1], name, value, at))
    return Parsed(entries, bad)
