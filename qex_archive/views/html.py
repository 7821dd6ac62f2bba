"""The frame of every page qex writes (the Bloch page, experiment reports): one place for the
Content-Security-Policy that forbids fetching anything and running scripts, the base styles,
and escaping. Pages are self-contained: they can be mailed, archived and read offline."""

from __future__ import annotations

import html
import json
from typing import Any

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
BASE_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2430;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:22px 0 6px}
.sub{color:#5a6472;margin-bottom:14px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0 0 14px}
dt{color:#5a6472} dd{margin:0;font-variant-numeric:tabular-nums}
.note{background:#f4f6f9;border-left:3px solid #8a96a8;padding:8px 12px;max-width:760px}
table{border-collapse:collapse;margin-top:16px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde2e8;padding:3px 8px;text-align:right}
"""


def esc(value: object) -> str:
    """``value`` as HTML text, quotes included, so that it is safe in an element and in an
    attribute: the one escaping function of every page and view qex writes."""
    return html.escape(str(value), quote=True)


def page(title: str, body: list[str], *, style: str = "", data: Any = None) -> bytes:
    """A whole page: ``body`` (trusted HTML fragments, their texts escaped by the caller) in
    the frame, and ``data`` embedded as JSON for machines (a script element browsers never
    run: its type is data, and the CSP forbids scripts anyway)."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{BASE_STYLE}{style}</style></head><body>",
        *body,
    ]
    if data is not None:
        # "<" is escaped so that no string in the data can close the script element
        payload = json.dumps(data, sort_keys=True, allow_nan=False).replace("<", "\\u003c")
        out.append(f'<script type="application/json" id="qex-data">{payload}</script>')
    out.append("</body></html>\n")
    return "\n".join(out).encode("utf-8")
