"""The explorer's "Save as HTML": the page with its style, its script and one view's data inline, a
single file that opens without the server (the script reads the data instead of asking for it)."""

from __future__ import annotations

import json
from typing import Any

SCRIPTS = ("next.js", "heads.js", "app.js")  # in the order index.html loads them


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no "</" to end it early, no "<!--" to open a comment, and
    U+2028/U+2029 escaped for older JavaScript parsers."""
    text = json.dumps(value, ensure_ascii=False)  # NaN and Infinity: JavaScript literals
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def standalone_page(static, snapshot: dict[str, Any]) -> str:
    """index.html with style.css and the scripts inlined and ``snapshot`` (the answers the page would have
    fetched) set before the script runs."""
    page = (static / "index.html").read_text(encoding="utf-8")
    css = (static / "style.css").read_text(encoding="utf-8")
    link = '<link rel="stylesheet" href="/static/style.css">'
    scripts = "\n".join(f'<script src="/static/{name}"></script>' for name in SCRIPTS)
    assert link in page and scripts in page, "index.html no longer links its files as expected"
    page = page.replace(link, f"<style>\n{css}</style>")
    inline = f"<script>window.SEQLAB_SNAPSHOT = {script_json(snapshot)};</script>\n"
    for name in SCRIPTS:
        js = (static / name).read_text(encoding="utf-8").replace("</", "<\\/")
        inline += f"<script>\n{js}</script>\n"
    head, tail = page.split(scripts, 1)
    return head + inline.rstrip("\n") + tail
