"""A real single-node Kubernetes cluster for the ``kubernetes`` test tier.

Built from Debian's own source package (Kubernetes 1.20.2) with Debian's Go, started with
Debian's etcd, a separate containerd instance, runc and the bridge CNI plugin, and torn
down leaving the host as it was. ``cluster.py`` is the entry point; README.md says what it
does to the host and what it costs.
"""
