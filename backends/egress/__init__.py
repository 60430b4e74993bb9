"""Sealed egress, one place for both backends: the per-bottle sidecar that holds a
bottle's only way out.

On the host:

- ``plan``: the plan's egress part (names, the guest env, ``plan``'s words, live edits);
- ``spec``: what the config says about an agent's egress (``EgressSpec``);
- ``credential``: where the real credential comes from, and the bottle's placeholder;
- ``folder``: what the host writes into the agent's egress folder for the sidecar;
- ``ca``: the per-bottle certificate authority;
- ``sidecar``: the sidecar container on a docker engine (state, command, bring-up);
- ``networks``: the bottle-side network, the sidecar's way out, the address pools;
- ``relay``: a smolvm machine's sidecar, reached through smolvm's host-side relay;
- ``image``: the sidecar image, built offline and cached by a hash of its inputs;
- ``log``: reading the egress log.

In the sidecar (this folder is mounted there; stdlib only but for mitmproxy):

- ``addon`` (with ``flows`` and ``sidecar_files``): the mitmproxy addon it runs;
- ``launch``: its launcher (listens on the bottle-side address only);
- ``policy``: the broker's decisions (``rules``, ``checks``, ``placeholder``), pure.
"""
