"""Escape probes: checks run against a live bottle that report pass / fail / not applicable
with evidence, and the fix for a failure. ``suite.run_suite`` runs them; the CLI's
``probe`` command, the dashboard's seal badge and the ``probes`` test tier all use it."""
