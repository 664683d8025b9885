"""The dashboard's HTML frame: one small stylesheet, no scripts, everything escaped."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

__all__ = ["PAGES", "SECURITY_HEADERS", "e", "render"]

PAGES: tuple[tuple[str, str], ...] = (
    ("/dashboard/api-keys", "API keys"),
    ("/dashboard/providers", "Providers"),
    ("/dashboard/usage", "Usage"),
    ("/dashboard/router", "Router"),
)
"""The dashboard's pages, in navigation order: ``(path, title)``."""

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    # Same-origin posts then carry their Origin and Referer (dashboard.csrf checks them);
    # other sites still get neither.
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d2430}
header{display:flex;justify-content:space-between;align-items:baseline;
border-bottom:1px solid #d7dce3;margin-bottom:1.5rem}
h1{font-size:1.35rem;margin:.5rem 0}h2{font-size:1.05rem;margin-top:2rem}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.45rem .5rem;
border-bottom:1px solid #e6e9ee;vertical-align:middle}th{font-weight:600;color:#4a5568}
code{font:13px ui-monospace,monospace;background:#f1f3f6;padding:.1rem .3rem;border-radius:3px}
form.inline{display:inline-flex;gap:.4rem;margin:0}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid #c3cad4;border-radius:4px}
button{background:#f6f7f9;cursor:pointer}button.primary{background:#2b59c3;color:#fff;
border-color:#2b59c3}button.danger{color:#b42318}
.notice{padding:.6rem .8rem;border-radius:4px;background:#e8f3ec;border:1px solid #b7dcc3}
.error{padding:.6rem .8rem;border-radius:4px;background:#fdecec;border:1px solid #f3b8b8}
.muted{color:#69758a}
nav{margin:-1rem 0 1.5rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem}
nav a{color:#2b59c3;text-decoration:none}
nav a.here{font-weight:600;color:#1d2430}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.flag{display:inline-block;font-size:12px;padding:0 .35rem;border-radius:3px;
background:#fff4e5;border:1px solid #f5c98b;color:#8a4b00}
.ok{display:inline-block;font-size:12px;padding:0 .35rem;border-radius:3px;
background:#e8f3ec;border:1px solid #b7dcc3}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}.scroll table{min-width:36rem}
figure.chart{margin:1rem 0 1.5rem}svg.chart{display:block;width:100%;height:auto;
max-width:36rem}details.figures summary{cursor:pointer;color:#4a5568;font-size:13px}
figcaption{margin-bottom:.25rem}figcaption .legend{color:#c2410c;font-size:13px}
dl.totals{display:flex;flex-wrap:wrap;gap:.5rem 2rem;margin:.5rem 0}dl.totals dt{color:#4a5568;
font-size:13px}dl.totals dd{margin:0;font-size:1.1rem}
form.range,p.presets,p.pager{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
table.log td:first-child,.step{white-space:nowrap}td.path{font-size:13px}
.step.failed{color:#b42318}
.confirm{padding:1rem;border:1px solid #f3b8b8;border-radius:4px;background:#fff8f8}
@media (max-width:40rem){body{margin:1rem auto;font-size:14px}
header{flex-wrap:wrap;gap:.25rem}nav{flex-wrap:wrap;gap:.5rem 1rem;margin-top:-.75rem}
form.inline{flex-wrap:wrap}input,select,button{max-width:100%}
th,td{padding:.35rem .4rem}main>table{display:block;overflow-x:auto}}
"""


_HERE = ' class="here"'


def e(value: object) -> str:
    """HTML-escape ``value`` (quotes included)."""
    return escape(str(value), quote=True)


def render(
    title: str,
    body: str,
    *,
    status_code: int = 200,
    tenant: str | None = None,
    csrf: str | None = None,
) -> HTMLResponse:
    """A full page around ``body`` (already escaped HTML)."""
    who = ""
    nav = ""
    if tenant is not None:
        links = (
            f'<a href="{e(path)}"{_HERE if name == title else ""}>{e(name)}</a>'
            for path, name in PAGES
        )
        nav = f"<nav>{''.join(links)}</nav>"
        logout = (
            '<form class="inline" method="post" action="/dashboard/logout">'
            f'<input type="hidden" name="csrf" value="{e(csrf or "")}">'
            '<button type="submit">Log out</button></form>'
        )
        who = f'<span class="muted">Tenant <strong>{e(tenant)}</strong></span> {logout}'
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} · Provara gateway</title><style>{_STYLE}</style></head><body>"
        f"<header><h1>Provara gateway · {e(title)}</h1><div>{who}</div></header>"
        f"{nav}<main>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)
