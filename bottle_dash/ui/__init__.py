"""The dashboard: every bottle_dash module that imports Textual lives under this package."""
