"""Sealed egress: the per-bottle sidecar that holds a bottle's only way out.

- ``policy``: the broker's decisions as pure functions (stdlib only; also runs in the
  sidecar);
- ``addon``: the mitmproxy addon the sidecar runs (``mitmdump -s addon.py``);
- ``spec``: what the config says about an agent's egress (``EgressSpec``);
- ``ca``: the per-bottle certificate authority;
- ``plan``: everything a sealed launch needs, resolved on the host (names, files, env);
- ``image``: the sidecar image, built offline and cached by a hash of its inputs.
"""
