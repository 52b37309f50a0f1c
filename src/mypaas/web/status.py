"""The manager's minimal status page, served without a token: component health only, server-rendered
HTML. Anything about apps (even how many there are) needs a token: the CLI or the API."""

from __future__ import annotations

import html
import time
from typing import Any


def _dot(ok: bool) -> str:
    return '<span class="ok">●</span>' if ok else '<span class="bad">●</span>'


def render_status(status: dict[str, Any]) -> str:
    """The page shows the components' health; app names, counts and details need a token (the API)."""
    rows = "".join(
        f"<tr><td>{_dot(c['healthy'])} {html.escape(name)}</td></tr>"
        for name, c in status["components"].items()
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>MyPaas</title>
<meta http-equiv="refresh" content="5">
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:50rem}}
td,th{{padding:.3rem .8rem;text-align:left}} .ok{{color:#1a7f37}} .bad{{color:#cf222e}}
table{{border-collapse:collapse;margin-bottom:1.5rem}} tr:nth-child(even){{background:#f6f8fa}}</style>
</head><body>
<h1>MyPaas {html.escape(status["version"])}</h1>
<p>{"All components healthy" if status["healthy"] else "Some components are unhealthy"} ·
updated {time.strftime("%H:%M:%S")}</p>
<h2>Components</h2><table>{rows}</table>
<p>Apps are shown to signed-in users only: <a href="/">the dashboard</a>, or <code>mypaas login</code>,
then <code>mypaas ls</code>
(or <code>GET /api/v1/apps</code> with a token).</p>
</body></html>"""
