"""The server's status page (``GET /``): one self-contained HTML page for a person.

The model card and the latest drift verdict are rendered on the server; the live request
rate and latency come from ``/metrics``, which the page's script reads every two seconds.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["render"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1b1f24;
padding:0 1rem}h1{font-size:1.4rem;margin:0 0 .2rem}.sub{color:#57606a;margin:0 0 1.5rem}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(17rem,1fr));gap:1rem}
.card{border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.2rem;min-width:0}
.card h2{font-size:.8rem;text-transform:uppercase;letter-spacing:.05em;color:#57606a;
margin:0 0 .6rem}table{border-collapse:collapse;width:100%}td{padding:.15rem 0}
td:first-child{padding-right:.8rem;vertical-align:top}
td+td{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td .wrap{white-space:normal;overflow-wrap:anywhere}.big{font-size:1.8rem;font-weight:600}
.ok{color:#1a7f37}.warn{color:#9a6700}.bad{color:#cf222e}code{font-size:.85em}
"""

_SCRIPT = """
let last=null;
function sum(text,name,filter){let t=0;for(const l of text.split('\\n')){
 if(!l.startsWith(name)||l[name.length]!=='{'&&l[name.length]!==' ')continue;
 if(filter&&!l.includes(filter))continue;t+=parseFloat(l.split(' ').pop())||0}return t}
function both(text,name){return sum(text,name,'"/invocations"')+sum(text,name,'"/predict"')}
async function tick(){try{const r=await fetch('metrics');const t=await r.text();
 const now={t:Date.now()/1000,n:both(t,'conveyor_requests_total'),
  s:both(t,'conveyor_request_seconds_sum'),c:both(t,'conveyor_request_seconds_count'),
  e:both(t,'conveyor_request_errors_total')};
 document.getElementById('total').textContent=now.n.toFixed(0);
 document.getElementById('errors').textContent=now.e.toFixed(0);
 if(last){const dt=now.t-last.t,dc=now.c-last.c;
  document.getElementById('rate').textContent=((now.n-last.n)/dt).toFixed(1)+' req/s';
  document.getElementById('latency').textContent=
   dc>0?((now.s-last.s)/dc*1000).toFixed(2)+' ms':'–';}
 last=now}catch(e){document.getElementById('rate').textContent='metrics unavailable'}}
tick();setInterval(tick,2000);
"""


def _when(stamp: object) -> str:
    """``2026-11-30 08:57 UTC``, the full ISO stamp on hover."""
    text = str(stamp or "")
    if len(text) < 16:
        return escape(text or "-")
    return f'<span title="{escape(text)}">{escape(text[:10])} {escape(text[11:16])} UTC</span>'


def _short_id(run_id: object) -> str:
    """A run id cut to 12 characters, the whole id on hover."""
    text = str(run_id or "-")
    shown = text if len(text) <= 14 else f"{text[:12]}…"
    return f'<code title="{escape(text)}">{escape(shown)}</code>'


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in pairs)


def _verdict(verdict: Any) -> str:
    if not isinstance(verdict, dict):
        return '<p class="sub">no check yet</p>'
    drift = verdict.get("drift", verdict.get("drifted"))
    label = verdict.get("verdict") or verdict.get("status") or (
        "drift" if drift else "no drift" if drift is not None else "checked")
    tone = "bad" if drift or str(label).lower() in ("drift", "drifted", "alert") else "ok"
    pairs = [("verdict", f'<span class="{tone}">{escape(str(label))}</span>')]
    for key in ("checked_at", "version", "rows", "window", "features_drifted", "report"):
        if verdict.get(key) in (None, "", []):
            continue
        value = verdict[key]
        if key == "checked_at":
            shown = _when(value)
        elif key == "report":  # a Store URI: its name here, the whole URI on hover
            text = str(value)
            shown = f'<code title="{escape(text)}">…/{escape(text.rsplit("/", 1)[-1])}</code>'
        elif isinstance(value, list):  # the drifted features: may be long, wraps
            shown = f'<code class="wrap">{escape(", ".join(map(str, value)))}</code>'
        else:
            shown = f"<code>{escape(str(value))}</code>"
        pairs.append((key.replace("_", " "), shown))
    return f"<table>{_rows(pairs)}</table>"


def render(card: dict[str, Any] | None, verdict: Any, *, report: bool, uptime: float) -> str:
    """The status page's HTML.

    Args:
        card: ``GET /model``'s answer, or ``None`` while the model loads.
        verdict: the latest monitoring verdict (parsed JSON), or ``None``.
        report: whether ``/report`` has the model's evaluation report.
        uptime: seconds since the server started.
    """
    if card is None:
        model = '<p class="warn">loading the model…</p>'
        title = "Conveyor model server"
    else:
        title = f"{card['name']} v{card['version']}" if card["version"] else card["name"]
        pairs = [("version", escape(str(card["version"] or "-"))),
                 ("alias", escape(str(card["alias"] or "-"))),
                 ("gate", escape(card["gate"])),
                 ("loaded at", _when(card["loaded_at"])),
                 ("run", _short_id(card["run_id"]))]
        tests = [(k, f"{v:.4f}") for k, v in sorted(card["metrics"].items())
                 if k.startswith("test_")] or [(k, f"{v:.4f}")
                                               for k, v in sorted(card["metrics"].items())]
        link = '<p><a href="report">evaluation report</a></p>' if report else ""
        model = (f"<table>{_rows(pairs)}</table><h2 style='margin-top:1rem'>test metrics</h2>"
                 f"<table>{_rows(tests) or '<tr><td>none recorded</td></tr>'}</table>{link}")
    live = ('<div class="big" id="rate">…</div><table>'
            + _rows([("mean latency (last 2 s)", '<span id="latency">–</span>'),
                     ("prediction requests since start", '<span id="total">0</span>'),
                     ("errors (4xx/5xx)", '<span id="errors">0</span>'),
                     ("uptime", f"{uptime / 60:.1f} min")])
            + "</table>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}"
            f"</title><meta name=viewport content='width=device-width'><style>{_STYLE}</style>"
            f"</head><body><h1>{escape(title)}</h1><p class=sub>Conveyor model server · "
            "<a href=model>/model</a> · <a href=openapi.json>/openapi.json</a> · "
            "<a href=metrics>/metrics</a></p><div class=grid>"
            f"<section class=card><h2>model</h2>{model}</section>"
            f"<section class=card><h2>traffic</h2>{live}</section>"
            f"<section class=card><h2>latest drift check</h2>{_verdict(verdict)}</section>"
            f"</div><script>{_SCRIPT}</script></body></html>")
