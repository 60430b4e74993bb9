"""The session holder: claude runs under ``dtach`` inside the bottle, at most one per agent.

Why a holder: ``docker exec`` (and ``smolvm machine exec``) never ends the process it
started when its client goes away, so a closed pane, a dead tmux server or a dropped
terminal used to leave claude running unseen, and the next ``enter`` started a second one
on the same conversation. Under a holder the pane is only a client: closing it detaches,
and the next attach shows the same live claude (``-r winch`` makes it redraw).

Why dtach: it is a Debian package of a few kB (the agent image installs it; the offline
test image copies the host's binary with its libraries, as it does git), it passes every
byte through untouched (titles, BEL, the status hooks are claude's own and keep working),
and it holds one program per socket, which is exactly the model: one socket per agent.
tmux inside the bottle would be a terminal inside a terminal; a Python holder would need
a Python the test image does not have.

Everything the bottle keeps for the holder is in ``GUEST_HOLDER_DIR`` in the home volume
(or the VM's disk): the socket, the holder's pid, the pinned session id, claude's last exit
status, a lock. ``held_argv`` builds the pane's command from any backend's
``claude_argv``: the framing before the claude executable is kept (exec, uid switch,
resize wrapper) and the rest becomes one ``sh -c HOLDER_SCRIPT`` whose arguments are
passed as arguments (never pasted into the script), so no quoting can go wrong.

The script (POSIX sh; busybox's is enough):

1. under a lock (``mkdir``, atomic; a lock older than ~10 s is taken as stale), it asks
   whether a holder lives: the pid file names a live process whose command line carries
   ``HOLDER_MARK``;
2. ``fresh`` (``R``, ``attach --fresh``) ends that claude first (TERM to its process group,
   KILL after 5 s) and pins a new session id;
3. with no live holder it starts one and attaches to it (``dtach -c``: the master reads
   claude's first output only once this client is attached, so nothing is lost) running
   claude with the pinned id: ``--resume ID`` when the transcript ``<ID>.jsonl`` exists,
   else ``--session-id ID``. An agent with no pinned id yet adopts its newest transcript
   (conversations made before ids were pinned), else gets a new one. The holder lets the
   lock go once its pid file is written, so a second attacher finds it and never starts
   another;
4. else it attaches (``dtach -a``; claude redraws on the SIGWINCH dtach sends); when
   claude has ended (not a mere detach) it exits with claude's exit status.

Without a terminal (``tty=False``: a script's one-shot ``attach``) there is nothing to
attach to: claude runs directly with the pinned id, unless a held claude lives, which it
refuses with a message. An image without ``dtach`` runs claude directly too (said once in
the pane) — the old behaviour, with pinned ids.
"""

from __future__ import annotations

from collections.abc import Sequence

from backends.claude import WORD_EXITED, status_hook_command
from backends.guest import GUEST_HOME

#: Where the holder keeps its socket, pid, session id, exit status and lock in the bottle.
GUEST_HOLDER_DIR = f"{GUEST_HOME}/.bottle-dash/session"
#: How the script names it: every exec sets ``HOME`` (``GUEST_HOME``); unit tests set theirs.
HOLDER_DIR_EXPR = f'"${{HOME:-{GUEST_HOME}}}/.bottle-dash/session"'
#: The holder's ``$0`` (the 4th word of its command line: ``sh -c SCRIPT MARK``), so its
#: pid file cannot be fooled by a reused pid (after a restart the file is still there).
HOLDER_MARK = "bottle-dash-claude-holder"
#: ``$0`` of the attach script (seen in ``ps``).
ATTACH_MARK = "bottle-dash-claude"
#: dtach's options: no detach key (every key goes to claude), no suspend-key handling,
#: redraw by SIGWINCH on attach.
DTACH_OPTIONS = ("-E", "-z", "-r", "winch")

#: What the holder runs under dtach: it records its pid (its process group is claude's),
#: runs claude, keeps claude's exit status and says ``exited`` on the status channel
#: (claude's own SessionEnd hook does not fire when it is killed or crashes). It catches
#: TERM and HUP (caught, not ignored: claude still gets the default action) so that ending
#: the group ends claude and the holder still writes both before its pid file goes.
HOLDER_SCRIPT = (
    "trap : TERM HUP; "
    'd=$1; shift; echo $$ >"$d/pid"; rmdir "$d/lock" 2>/dev/null; '
    '"$@"; rc=$?; echo "$rc" >"$d/rc"; '
    f'( {status_hook_command(WORD_EXITED)} ); rm -f "$d/pid"; exit $rc'
)

#: The attach script; ``$1`` resume|fresh, ``$2`` 1 (a terminal) or 0, then claude's argv.
ATTACH_SCRIPT = r"""
mode=$1; tty=$2; shift 2
d=%(dir)s
say() { printf 'bottle-dash: %%s\n' "$*" >&2; }
mkdir -p "$d" || exit 1
live() {
  pid=$(cat "$d/pid" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
  [ "$(tr '\000' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n 4p)" = %(mark)s ]
}
n=0
until mkdir "$d/lock" 2>/dev/null; do
  n=$((n + 1)); if [ "$n" -ge 100 ]; then rm -rf "$d/lock"; n=0; fi; sleep 0.1
done
trap 'rmdir "$d/lock" 2>/dev/null' EXIT
unlock() { rmdir "$d/lock" 2>/dev/null; trap - EXIT; }
if [ "$mode" = fresh ] && live; then
  kill -s TERM -- "-$pid" 2>/dev/null
  n=0; while live && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
  live && { kill -s KILL -- "-$pid" 2>/dev/null; sleep 0.2; }
fi
if live; then
  if [ "$tty" != 1 ]; then
    unlock; say "claude of this agent already runs in its session holder; attach from a terminal"
    exit 1
  fi
  unlock
  # A redraw needs a size change: claude (Ink) ignores a SIGWINCH that leaves its size as
  # it was, and a pane re-opened at the old size would stay blank. Attach one row short,
  # then give the row back: the terminal's SIGWINCH reaches the dtach client, which passes
  # the true size on, and claude redraws at it.
  rows=$(stty size 2>/dev/null); rows=${rows%% *}
  case "$rows" in ''|*[!0-9]*) rows=0;; esac
  if [ "$rows" -gt 2 ]; then
    stty rows $((rows - 1)) 2>/dev/null
    ( sleep 0.5; stty rows "$rows" </dev/tty ) >/dev/null 2>&1 &
  fi
  dtach -a "$d/sock" %(options)s; st=$?
else
  cfg=${CLAUDE_CONFIG_DIR:-$HOME/.claude}
  sid=$(cat "$d/session-id" 2>/dev/null)
  case "$sid" in *[!0-9a-f-]*) sid=;; esac
  [ "${#sid}" -eq 36 ] || sid=
  if [ -z "$sid" ] && [ "$mode" != fresh ]; then
    sid=$(ls -t "$cfg"/projects/*/*.jsonl 2>/dev/null | head -n 1)
    sid=${sid##*/}; sid=${sid%%.jsonl}
    case "$sid" in *[!0-9a-f-]*) sid=;; esac
    [ "${#sid}" -eq 36 ] || sid=
  fi
  if [ -z "$sid" ] || [ "$mode" = fresh ]; then
    sid=$(cat /proc/sys/kernel/random/uuid)
  fi
  printf '%%s\n' "$sid" >"$d/session-id"
  claude=$1; shift
  if ls "$cfg"/projects/*/"$sid".jsonl >/dev/null 2>&1; then
    set -- "$claude" --resume "$sid" "$@"
  else
    set -- "$claude" --session-id "$sid" "$@"
  fi
  if [ "$tty" != 1 ] || ! command -v dtach >/dev/null 2>&1; then
    [ "$tty" = 1 ] && say "no dtach in this image: claude runs without its session holder"
    unlock; exec "$@"
  fi
  rm -f "$d/sock" "$d/pid" "$d/rc"
  trap - EXIT
  dtach -c "$d/sock" %(options)s sh -c %(holder)s %(mark)s "$d" "$@"; st=$?
fi
live && exit "$st"
[ -s "$d/rc" ] && exit "$(cat "$d/rc")"
exit "$st"
"""


def attach_script() -> str:
    """The attach script with its constants filled in (each shell-quoted)."""
    import shlex

    return ATTACH_SCRIPT % {
        "dir": HOLDER_DIR_EXPR,
        "mark": HOLDER_MARK,
        "options": " ".join(DTACH_OPTIONS),
        "holder": shlex.quote(HOLDER_SCRIPT),
    }


def held_argv(
    argv: Sequence[str], n_args: int, *, fresh: bool = False, tty: bool = True
) -> list[str]:
    """Wrap a backend's ``claude_argv`` so that claude runs in the agent's session holder.

    ``argv`` is what ``Bottle.claude_argv(args)`` returned and ``n_args == len(args)``. The
    claude executable sits at index ``len(argv) - n_args - 1``: the split is by index,
    never by searching for a "claude" token (an agent name or argument may contain one).
    Everything before it is kept; claude and its arguments become the arguments of
    ``sh -c ATTACH_SCRIPT bottle-dash-claude MODE TTY claude ARGS...`` (see the module
    docstring): the live claude is re-attached, or one is started with the pinned session
    id; ``fresh`` ends the live one first and pins a new id.
    """
    argv = list(argv)
    index = len(argv) - n_args - 1
    if n_args < 0 or index < 0:
        raise ValueError(f"argv has no claude executable at index {index}: {argv!r}")
    prefix, rest = argv[:index], argv[index:]
    mode = "fresh" if fresh else "resume"
    return [*prefix, "sh", "-c", attach_script(), ATTACH_MARK, mode, "1" if tty else "0", *rest]
