"""The egress sidecar's launcher: run mitmdump listening on the sidecar's bottle-side
address only (``python3 launch.py <mitmdump argv with {listen}>``).

The sidecar sits on two networks: the bottle's (where the proxy must answer) and its way
out. Listening on every address would serve the proxy to anything on the outer network
(and the host), where no bottle is. The bottle-side subnet is in ``policy.json``
(``internal``); the sidecar's addresses come from ``/proc/net/fib_trie``; with no address in
that subnet the sidecar does not start (fail closed: no proxy, no egress).

Stdlib only; runs in the sidecar beside ``policy.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import policy  # the sidecar's copy, beside this file

LISTEN_MARK = "{listen}"


def main(argv: list[str]) -> int:
    """Replace ``LISTEN_MARK`` in ``argv`` with the bottle-side address and exec it."""
    directory = Path(os.environ.get("BOTTLE_EGRESS_DIR", policy.SIDECAR_DIR))
    try:
        text = (directory / policy.POLICY_FILE).read_text(encoding="utf-8")
        internal = policy.Policy.from_json(text).internal
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"bottle-dash egress: cannot read the policy: {exc}", file=sys.stderr)
        return 2
    try:
        trie = Path("/proc/net/fib_trie").read_text(encoding="ascii", errors="replace")
    except OSError:
        trie = ""
    address = policy.listen_address(internal, policy.local_addresses(trie))
    if address is None:
        print(
            f"bottle-dash egress: no address of this sidecar is on the bottle's network "
            f"{', '.join(internal) or '(none named)'}: not starting",
            file=sys.stderr,
        )
        return 2
    if not argv:
        print(address)
        return 0
    args = [a.replace(LISTEN_MARK, address) for a in argv]
    os.execvp(args[0], args)
    return 2  # pragma: no cover  (execvp does not return)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
