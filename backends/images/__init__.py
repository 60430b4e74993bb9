"""Images built without a registry (see rootfs.py)."""
