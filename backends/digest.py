"""SHA-256 of short strings without ``hashlib``.

``hashlib`` loads OpenSSL (about 5 ms), a cost every ``ls`` would pay for one digest of a
path (the owner label) and, with a docker context, one of its name. The interpreter's own
SHA-256 module gives the same digest; ``hashlib`` is the fallback where it is missing.
"""

from __future__ import annotations

try:
    from _sha2 import sha256  # Python 3.12+
except ImportError:
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:  # a build without the builtin module
        from hashlib import sha256


def sha256_hex(text: str) -> str:
    """The hex SHA-256 of ``text`` (UTF-8), as ``hashlib.sha256(...).hexdigest()``."""
    return sha256(text.encode()).hexdigest()
