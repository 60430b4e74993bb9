"""The docker backend: bottles as hardened containers, each with its own network and home
volume. ``backend.DockerBackend`` is what the registry loads; ``listing`` lists bottles
(the ``ls`` hot path), ``launch`` brings one up as calls into ``container``, ``volume``,
``accounts``, ``provision`` and ``backends.egress`` (sidecar, networks); ``argv`` builds
the ``docker exec`` command lines, ``plan`` resolves an agent, ``engine`` talks to
Docker, ``image`` builds the agent image."""

from __future__ import annotations
