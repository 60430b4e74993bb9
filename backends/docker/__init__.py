"""The docker backend: bottles as hardened containers, each with its own network and home
volume. ``backend.DockerBackend`` is what the registry loads; ``argv`` builds the
``docker exec`` command lines, ``plan`` resolves an agent, ``provision`` copies the prompt
and skills in, ``engine`` talks to Docker, ``image`` builds the agent image."""

from __future__ import annotations
