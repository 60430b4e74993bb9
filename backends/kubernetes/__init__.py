"""The kubernetes backend: one Pod per bottle on a cluster the operator names in the
config's ``[kubernetes]`` table (``settings``), its home and workspace in
PersistentVolumeClaims, its egress sidecar a container of the same Pod (``pod``)."""
