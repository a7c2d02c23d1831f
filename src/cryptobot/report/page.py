"""One self-contained HTML page of charts: every image inlined as a data: URI, no script, no
stylesheet or font from elsewhere, so it opens offline, from a mail attachment or a CI
artefact exactly as written."""

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One picture of the page: its anchor id, caption and PNG bytes."""

    id: str
    caption: str
    png: bytes


STYLE = (
    "body{font-family:sans-serif;margin:16px;background:#fafafa;color:#263238}"
    "figure{margin:0 0 28px 0;background:white;border:1px solid #cfd8dc;padding:8px}"
    "figure img{max-width:100%;height:auto;display:block}"
    "figcaption{font-family:monospace;font-size:13px;padding:6px 0}"
    "li{font-family:monospace;font-size:13px}"
)


def figures_page(figures: Sequence[Figure], *, title: str) -> str:
    """The page: a title, a linked list of the figures, then one ``<figure>`` each."""
    items = "".join(
        f"<li><a href='#{html.escape(f.id)}'>{html.escape(f.caption)}</a></li>" for f in figures
    )
    body = "".join(
        f"<figure id='{html.escape(f.id)}'>"
        f"<figcaption>{html.escape(f.caption)}</figcaption>"
        f"<img alt='{html.escape(f.caption)}' "
        f"src='data:image/png;base64,{base64.b64encode(f.png).decode('ascii')}'>"
        "</figure>"
        for f in figures
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{len(figures)} charts</p><ol>{items}</ol>"
        f"{body}</body></html>\n"
    )
