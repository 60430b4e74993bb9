"""Reading a bottle's network from inside (``/proc/net``) and from the engine, for the
network probes. Pure parsing here; the probes run the commands."""

from __future__ import annotations

import ipaddress
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


#: One raw exchange with "$1":"$2": the request (printf %b escapes) in "$3", the reply on
#: stdout. For talking to the bottle's own sidecar only.
EXCHANGE_FN = r"""
exchange() {
  if command -v nc >/dev/null 2>&1; then
    printf '%b' "$3" | { cat; sleep 3; } | nc -w 5 "$1" "$2" 2>/dev/null
  elif command -v node >/dev/null 2>&1; then
    node -e 'const a=process.argv, s=require("net").connect(+a[2], a[1], ()=>s.write(a[3]));
      s.on("data",d=>process.stdout.write(d)); s.on("error",()=>process.exit(0));
      setTimeout(()=>process.exit(0),4000)' "$1" "$2" "$(printf '%b' "$3")"
  else echo no-client; fi
}
"""


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
