"""Reading a bottle's network from inside (``/proc/net``) and from the engine, for the
network probes. Pure parsing here; the probes run the commands."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Any

#: Run in the bottle: its IPv4 routes, IPv6 addresses and routes, and loopback listeners.
ROUTES_SCRIPT = (
    "echo '# route'; cat /proc/net/route 2>/dev/null; "
    "echo '# if_inet6'; cat /proc/net/if_inet6 2>/dev/null; "
    "echo '# ipv6_route'; cat /proc/net/ipv6_route 2>/dev/null; "
    "echo '# tcp'; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null"
)

#: A TCP connect from the bottle to "$1":"$2" with whatever the image has; prints
#: ``open``, ``closed`` or ``no-client``. Sends nothing but the handshake.
TCP_FN = r"""
tcp() {
  if command -v node >/dev/null 2>&1; then
    node -e 'const s=require("net").connect({host:process.argv[1],port:+process.argv[2]});
      const t=setTimeout(()=>{console.log("closed");process.exit(0)},3000);
      s.on("connect",()=>{console.log("open");process.exit(0)});
      s.on("error",()=>{console.log("closed");process.exit(0)})' "$1" "$2"
  elif command -v nc >/dev/null 2>&1; then
    if nc -w 3 "$1" "$2" </dev/null >/dev/null 2>&1; then echo open; else echo closed; fi
  else echo no-client; fi
}
"""


def sections(text: str) -> dict[str, list[str]]:
    """The ``# name`` sections of ``ROUTES_SCRIPT`` output, header lines dropped."""
    out: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# "):
            current = line[2:].strip()
            out[current] = []
        elif current and line.strip():
            out[current].append(line)
    for key in ("route", "tcp"):
        if out.get(key):
            out[key] = [
                ln for ln in out[key] if not ln.split()[0].lower().startswith(("iface", "sl"))
            ]
    return out


def _ip4(hex_le: str) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(socket.inet_ntoa(struct.pack("<I", int(hex_le, 16))))


def ipv4_routes(lines: list[str]) -> list[tuple[str, ipaddress.IPv4Network, str]]:
    """``(iface, destination network, gateway)`` of each /proc/net/route line."""
    routes = []
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            continue
        dest, gw, mask = _ip4(parts[1]), _ip4(parts[2]), _ip4(parts[7])
        net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        routes.append((parts[0], net, str(gw)))
    return routes


def routes_to(lines: list[str], address: str) -> list[str]:
    """The routes (as text) that would carry a packet to ``address``."""
    ip = ipaddress.IPv4Address(address)
    return [
        f"{net} via {gw} dev {iface}"
        for iface, net, gw in ipv4_routes(lines)
        if ip in net and iface != "lo"
    ]


def default_routes(lines: list[str]) -> list[str]:
    """IPv4 default routes (0.0.0.0/0) as text."""
    return [
        f"default via {gw} dev {iface}"
        for iface, net, gw in ipv4_routes(lines)
        if net.prefixlen == 0
    ]


def ipv6_global(if_inet6: list[str], ipv6_route: list[str]) -> list[str]:
    """Global-scope IPv6 addresses and IPv6 default routes off loopback."""
    found = []
    for line in if_inet6:
        parts = line.split()
        if len(parts) >= 6 and parts[5] != "lo" and parts[3] == "00":
            found.append(f"address {ipaddress.IPv6Address(int(parts[0], 16))} on {parts[5]}")
    for line in ipv6_route:
        parts = line.split()
        if len(parts) < 10 or parts[1] != "00" or parts[9] == "lo" or int(parts[0], 16):
            continue
        if not int(parts[8], 16) & 0x0200:  # RTF_REJECT: an unreachable route is no way out
            found.append(f"default route dev {parts[9]}")
    return found


def loopback_listeners(tcp_lines: list[str]) -> set[int]:
    """Ports listening (state 0A) in the bottle's /proc/net/tcp{,6}."""
    ports = set()
    for line in tcp_lines:
        parts = line.split()
        if len(parts) >= 4 and parts[3] == "0A" and ":" in parts[1]:
            ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def network_summary(networks: dict[str, Any]) -> list[str]:
    """One line per engine network: internal, inhibit_ipv4, IPv6, gateway."""
    lines = []
    for name, net in networks.items():
        opts = net.get("Options") or {}
        gw = [c.get("Gateway") for c in (net.get("IPAM") or {}).get("Config") or []]
        lines.append(
            f"{name}: internal={bool(net.get('Internal'))}, "
            f"inhibit_ipv4={opts.get('com.docker.network.bridge.inhibit_ipv4', 'false')}, "
            f"ipv6={bool(net.get('EnableIPv6'))}, gateway={','.join(g for g in gw if g) or '-'}"
        )
    return lines


#: One raw exchange with "$1":"$2": the request in "$3" (``wire``: printf ``%b`` escapes),
#: then each further argument a second later (a TLS ClientHello after the proxy's answer to
#: CONNECT); the reply on stdout. Works with nc (busybox) or node (the agent image has no
#: nc). For talking to the bottle's own sidecar only.
EXCHANGE_FN = r"""
exchange() {
  h="$1"; p="$2"; shift 2
  if command -v nc >/dev/null 2>&1; then
    { for c in "$@"; do printf '%b' "$c"; sleep 1; done; sleep 3; } | nc -w 5 "$h" "$p" 2>/dev/null
  elif command -v node >/dev/null 2>&1; then
    node -e 'const a=process.argv.slice(1), s=require("net").connect(+a[1], a[0]);
      const dec=w=>Buffer.from(w.replace(/\\(0[0-7]{1,3}|r|n|\\)/g,(m,e)=>e==="r"?"\r":
        e==="n"?"\n":e==="\\"?"\\":String.fromCharCode(parseInt(e,8))),"latin1");
      s.on("connect",()=>a.slice(2).forEach((w,i)=>setTimeout(()=>s.write(dec(w)),i*1000)));
      s.on("data",d=>process.stdout.write(d)); s.on("error",()=>process.exit(0));
      s.on("close",()=>process.exit(0)); setTimeout(()=>process.exit(0),(a.length+2)*1000)' \
      "$h" "$p" "$@"
  else echo no-client; fi
}
"""


def wire(data: str | bytes) -> str:
    """``data`` as one shell word's worth of ``printf %b`` escapes: printable ASCII as it
    is, everything else (CR, LF, NUL, any byte of a ClientHello) as ``\\0ooo``. Not the
    shell's quoting: callers still ``shlex.quote`` it. Both ``printf %b`` (busybox, dash)
    and the node branch of ``EXCHANGE_FN`` decode it; a shell's ``$(...)`` would eat
    trailing newlines, which is why nothing decodes it before node gets it."""
    raw = data.encode("latin-1") if isinstance(data, str) else data
    out = []
    for byte in raw:
        if byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\0{byte:03o}")
    return "".join(out)


def client_hello(sni: str) -> bytes:
    """A TLS 1.2 ClientHello naming ``sni`` (RSA/ECDSA with ECDHE and AES-GCM, the groups
    and signature algorithms any OpenSSL server accepts). Only ever sent to the bottle's
    own sidecar, which answers it (a ServerHello) or refuses it; nothing completes."""
    name = sni.encode("ascii")

    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack(">HH", kind, len(body)) + body

    server_name = struct.pack(">HBH", len(name) + 3, 0, len(name)) + name
    groups = struct.pack(">H", 4) + bytes.fromhex("001d0017")
    sigalgs = bytes.fromhex("0401080404030501060108050503")
    extensions = (
        ext(0, server_name)
        + ext(10, groups)
        + ext(11, b"\x01\x00")
        + ext(13, struct.pack(">H", len(sigalgs)) + sigalgs)
    )
    suites = bytes.fromhex("c02fc030c02bc02c009c009d")
    body = (
        b"\x03\x03"
        + os.urandom(32)
        + b"\x00"
        + struct.pack(">H", len(suites))
        + suites
        + b"\x01\x00"
        + struct.pack(">H", len(extensions))
        + extensions
    )
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


def tls_answer(reply: bytes) -> str:
    """What came back after a ClientHello (``reply``: everything the proxy sent after
    the CONNECT's answer): ``server-hello``, ``alert``, ``closed`` (nothing) or
    ``other``."""
    if not reply:
        return "closed"
    if len(reply) >= 6 and reply[0] == 0x16 and reply[1] == 0x03 and reply[5] == 0x02:
        return "server-hello"
    if reply[0] == 0x15 and reply[1:2] == b"\x03":
        return "alert"
    return "other"


def split_reply(reply: bytes) -> tuple[str, bytes]:
    """A proxy's raw reply to CONNECT (+ ClientHello): its status line and the bytes after
    the answer's header block."""
    head, sep, rest = reply.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1").strip()
    return status, rest if sep else b""


def proxy_address(proxy: str) -> tuple[str, int]:
    """``http://host:port`` -> ``(host, port)`` (port 8080 when absent)."""
    rest = proxy.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host:
        return rest, 8080
    return host, int(port) if port.isdigit() else 8080


def rule_host(rule: str) -> tuple[str, int | None]:
    """An allowlist rule (``host``, ``host:port``, ``*.domain``) as ``(host, port)``."""
    host, _, port = rule.rpartition(":")
    if not host or not port.isdigit():
        return rule, None
    return host, int(port)
