"""The frame of every page qex writes (the Bloch page, experiment reports): one place for the
Content-Security-Policy that forbids fetching anything and running scripts, the base styles,
and escaping. Pages are self-contained: they can be mailed, archived and read offline.

Also the one trust rule for a stored file reached as a page (:func:`may_show`): ``open``,
the links of a report and ``serve`` all ask it, so a page from someone's bundle is never
one click away."""

from __future__ import annotations

import html
import json
from typing import Any, Protocol

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


class StoredPage(Protocol):
    """What the trust rule needs of a stored file (:class:`qex_archive.run.Artifact`)."""

    @property
    def foreign(self) -> bool: ...


def may_show(artifact: StoredPage, *, trust: bool = False) -> bool:
    """Whether a stored file may be shown as a page (opened in a browser, linked from a page
    qex writes, served): a file qex made here may; a file imported from someone's bundle
    (``artifact.foreign``: it may hold scripts, forms, links anywhere) only when the user
    trusts it explicitly (``open --trust``), and is never linked. ``render`` makes a local
    page in its place. The one rule: every way of reaching a page asks it."""
    return trust or not artifact.foreign


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
