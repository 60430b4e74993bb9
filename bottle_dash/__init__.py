"""bottle-dash: a cockpit for many Claude Code agents, each sealed in a bottle."""

from backends.base import VERSION as __version__

__all__ = ["__version__"]
