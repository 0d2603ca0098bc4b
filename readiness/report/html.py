"""HTML fleet report: one self-contained file, a heat map of hosts × checks.

No network: inline CSS and JS, no fonts, images or CDN, and a Content-Security-Policy
(``default-src 'none'``) that forbids any request even if something slipped through.
Every value from a host is hostile: text in the markup goes through ``html.escape``;
per-result data (message, details, recommendations) is a JSON island with ``<``, ``>`` and
``&`` escaped, shown on click with ``textContent`` only, never parsed as HTML.

Layout: header (verdict, exit code), summary counts, quality gates, filter bar, the heat
map grouped by each host's first inventory group (one ``<tbody>`` per group, with its
counts), and a detail panel. ``#r=N`` in the URL opens result N's details (deep links;
also how the tests look at the panel without clicking).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..model import CheckResult, FleetReport, HostReport, Status
from ._clean import detail_lines, xml_text
from .sections import store_html

if TYPE_CHECKING:  # the renderer only reads the points; the store fills them (tasks.py)
    from ..store.history import TrendPoint

Trend = Mapping[str, Sequence["TrendPoint"]]

__all__ = ["render_html", "render_html_fragment"]

TREND_BAR, TREND_GAP, TREND_HEIGHT = 10, 2, 48  # px: one stacked bar per run
DETAILS_LIMIT = 4000  # characters of details per result carried into the page
NOTEBOOK_HOSTS = 50  # rows in the notebook view (_repr_html_)

_COLOURS = {
    Status.SKIPPED: ("#e5e7eb", "#374151"),
    Status.READY: ("#16a34a", "#ffffff"),
    Status.DEGRADED: ("#f59e0b", "#1f2937"),
    Status.NOT_READY: ("#dc2626", "#ffffff"),
    Status.ERROR: ("#7c3aed", "#ffffff"),
    Status.UNREACHABLE: ("#1f2937", "#ffffff"),
    Status.INTERRUPTED: ("#64748b", "#ffffff"),
}


def _text(value: object) -> str:
    """Host text for the page: XML-illegal controls dropped; bidi controls (they reorder what a
    browser shows: a message could read backwards) and the other invisible formatting
    characters shown as \\u202e, as the text report does (:func:`._clean.xml_text`)."""
    return xml_text(value)


def _e(value: object) -> str:
    """Escaped for text and attribute values; NUL, ESC and other controls dropped."""
    return html.escape(_text(value), quote=True)


def _status_css(prefix: str) -> str:
    return "".join(
        f"{prefix} .s-{s.value}{{background:{bg};color:{fg}}}" for s, (bg, fg) in _COLOURS.items()
    )


def _group(host: HostReport) -> str:
    return host.groups[0] if host.groups else "ungrouped"


def _grouped(report: FleetReport) -> dict[str, list[HostReport]]:
    groups: dict[str, list[HostReport]] = {}
    for host in report.hosts:
        groups.setdefault(_group(host), []).append(host)
    return groups


def _counts_text(hosts: list[HostReport]) -> str:
    counts = Counter(h.status for h in hosts)
    parts = [f"{counts[s]} {s.value}" for s in sorted(counts, reverse=True)]
    return f"{len(hosts)} host(s): " + ", ".join(parts)


def _detail_text(result: CheckResult) -> str:
    text = "\n".join(detail_lines(result.details))
    return text if len(text) <= DETAILS_LIMIT else text[: DETAILS_LIMIT - 1] + "…"


def _json_island(data: Any) -> str:
    """JSON that cannot end its <script> element or open a comment: <, >, & escaped."""
    text = json.dumps(data, separators=(",", ":"), default=str)  # ASCII: U+2028 escaped
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_CSS = """
*{box-sizing:border-box}
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
header{padding:12px 16px;background:#111827;color:#f9fafb}
header h1{font-size:18px;margin:0 0 4px}
header .verdict{font-weight:700;padding:2px 8px;border-radius:4px}
section,#controls{padding:8px 16px}
.chips span{display:inline-block;margin:2px 6px 2px 0;padding:2px 8px;border-radius:10px}
table.gates{border-collapse:collapse}
table.gates td,table.gates th{border:1px solid #d1d5db;padding:2px 8px;text-align:left}
#controls{border-bottom:1px solid #d1d5db}
#controls input,#controls select,#controls label{margin-right:10px}
#wrap{margin:0 16px 16px;overflow:auto;max-height:85vh}
#heatmap{border-collapse:separate;border-spacing:1px}
#heatmap thead th{position:sticky;top:0;background:#f9fafb;z-index:2;cursor:pointer;
 writing-mode:sideways-lr;white-space:nowrap;padding:4px 2px;font-weight:600;vertical-align:bottom}
#heatmap thead th.hostcol{writing-mode:horizontal-tb;text-align:left}
#heatmap th.h{text-align:left;font-weight:400;white-space:nowrap;max-width:22em;overflow:hidden;text-overflow:ellipsis;padding:0 6px 0 0}
#heatmap td{width:20px;min-width:20px;height:18px;text-align:center;cursor:pointer;font-size:11px;border-radius:2px}
#heatmap td.v{width:auto;padding:0 6px;font-size:11px;cursor:default}
#heatmap tr.gh th{text-align:left;padding:8px 0 2px;font-weight:700;background:#f9fafb}
#heatmap td.c:hover,#heatmap td.sel{outline:2px solid #2563eb}
#detail{position:fixed;right:0;top:0;bottom:0;width:min(36em,90vw);overflow:auto;background:#fff;
 border-left:1px solid #d1d5db;padding:12px 16px;box-shadow:-4px 0 12px rgba(0,0,0,.1);z-index:5}
#detail pre{white-space:pre-wrap;word-break:break-word;background:#f3f4f6;padding:6px}
#detail .close{float:right;cursor:pointer;border:0;background:none;font-size:18px}
.hidden{display:none}
#trends .trend{display:inline-block;margin:0 16px 8px 0;vertical-align:top}
#trends figcaption{font-weight:600}
#trends svg{display:block;background:#fff;border:1px solid #e5e7eb}
"""

_JS = r"""
(function(){
"use strict";
var data=JSON.parse(document.getElementById("readiness-data").textContent);
var table=document.getElementById("heatmap"),colStyle=document.getElementById("colstyle");
var q=document.getElementById("f-text"),fs=document.getElementById("f-status"),
    fc=document.getElementById("f-check"),fg=document.getElementById("f-group"),
    fp=document.getElementById("f-problems"),shown=document.getElementById("shown");
var RANK=data.rank,OK={ready:1,skipped:1};
function cellsOf(tr){return tr.querySelectorAll("td.c");}
function apply(){
  var text=q.value.trim().toLowerCase(),st=fs.value,ck=fc.value,gr=fg.value,only=fp.checked,n=0;
  var css="";
  if(ck!==""){for(var i=0;i<data.checks.length;i++){if(String(i)!==ck){
    css+="#heatmap tr>:nth-child("+(i+2)+"){display:none}";}}}
  colStyle.textContent=css;
  var bodies=table.tBodies;
  for(var b=0;b<bodies.length;b++){
    var body=bodies[b],groupOk=(gr===""||body.getAttribute("data-group")===gr),any=0;
    var rows=body.querySelectorAll("tr.host");
    for(var r=0;r<rows.length;r++){
      var tr=rows[r],ok=groupOk,cells=cellsOf(tr);
      if(ok&&text){ok=(tr.getAttribute("data-host")+" "+body.getAttribute("data-group")).toLowerCase().indexOf(text)>=0;}
      if(ok&&(st!==""||only)){
        var hit=false;
        for(var c=0;c<cells.length;c++){
          if(ck!==""&&String(c)!==ck)continue;
          var s=cells[c].getAttribute("data-s");
          if((st===""||s===st)&&(!only||!OK[s])){hit=true;break;}
        }
        ok=hit;
      }
      tr.classList.toggle("hidden",!ok);if(ok){any++;n++;}
    }
    body.classList.toggle("hidden",!any);
  }
  shown.textContent=n+" of "+data.hosts+" hosts shown";
}
function sortBy(col){
  var bodies=table.tBodies,dir=(table.getAttribute("data-sort")===String(col))?-1:1;
  table.setAttribute("data-sort",dir===1?String(col):"");
  for(var b=0;b<bodies.length;b++){
    var rows=Array.prototype.slice.call(bodies[b].querySelectorAll("tr.host"));
    rows.sort(function(x,y){
      var a,z;
      if(col<0){a=x.getAttribute("data-host");z=y.getAttribute("data-host");return dir*(a<z?-1:a>z?1:0);}
      if(col>=data.checks.length){a=RANK[x.getAttribute("data-s")];z=RANK[y.getAttribute("data-s")];}
      else{a=RANK[cellsOf(x)[col].getAttribute("data-s")];z=RANK[cellsOf(y)[col].getAttribute("data-s")];}
      return dir*(z-a);
    });
    for(var r=0;r<rows.length;r++)bodies[b].appendChild(rows[r]);
  }
}
var panel=document.getElementById("detail"),selected=null;
function text(id,value){document.getElementById(id).textContent=value;}
function show(idx){
  var d=data.results[idx],S=data.strings;if(!d){return;}
  if(selected)selected.classList.remove("sel");
  selected=table.querySelector('td[data-r="'+idx+'"]');if(selected)selected.classList.add("sel");
  text("d-host",S[d[0]]);text("d-check",S[d[1]]);text("d-status",d[2]);text("d-message",S[d[3]]);
  text("d-details",S[d[4]]||"(none)");
  var ul=document.getElementById("d-recs");while(ul.firstChild)ul.removeChild(ul.firstChild);
  for(var i=0;i<d[5].length;i++){var li=document.createElement("li");li.textContent=S[d[5][i]];ul.appendChild(li);}
  document.getElementById("d-status").className="s-"+d[2];
  panel.classList.remove("hidden");
}
function fromHash(){var m=/^#r=(\d+)$/.exec(location.hash);if(m)show(Number(m[1]));else panel.classList.add("hidden");}
table.addEventListener("click",function(ev){
  var t=ev.target;
  if(t.tagName==="TD"&&t.hasAttribute("data-r")){location.hash="r="+t.getAttribute("data-r");return;}
  if(t.tagName==="TH"&&t.hasAttribute("data-col")){sortBy(Number(t.getAttribute("data-col")));}
});
document.getElementById("d-close").addEventListener("click",function(){history.replaceState(null,"",location.pathname+location.search);fromHash();});
window.addEventListener("hashchange",fromHash);
[q,fs,fc,fg,fp].forEach(function(el){el.addEventListener("input",apply);el.addEventListener("change",apply);});
apply();fromHash();
document.documentElement.setAttribute("data-ready","1");
})();
"""


def _header(report: FleetReport, fail_on: Status) -> list[str]:
    verdict = report.verdict(fail_on)
    worst = report.overall_status
    return [
        "<header>",
        f"<h1>{_e(report.title)}</h1>",
        f"<div>Generated {_e(report.generated_at.strftime('%Y-%m-%d %H:%M:%S UTC'))}"
        f"{' · suite ' + _e(report.suite) if report.suite else ''} · {len(report.hosts)} host(s)"
        f" · {len(report.check_names)} check(s) · verdict "
        f'<span class="verdict s-{worst.value}" id="verdict">{_e(verdict.upper())}</span>'
        f" · exit code {report.exit_code(fail_on)}"
        f"{' · run interrupted, hosts not audited are marked' if report.interrupted else ''}</div>",
        "</header>",
    ]


def _summary(report: FleetReport) -> list[str]:
    results = Counter(r.status for r in report.results)
    hosts = Counter(h.status for h in report.hosts)
    chips = "".join(
        f'<span class="s-{s.value}" data-status="{s.value}">{_e(s.symbol)} {s.value}: '
        f"{results.get(s, 0)} result(s), {hosts.get(s, 0)} host(s)</span>"
        for s in Status
    )
    return ['<section id="summary" class="chips">', chips, "</section>"]


def _gates(report: FleetReport) -> list[str]:
    if report.gates is None or not report.gates.rows:
        return []
    out = [
        '<section id="gates"><h2>Quality gates</h2><table class="gates">',
        "<tr><th>scope</th><th>gate</th><th>required</th><th>measured</th><th>verdict</th></tr>",
    ]
    for row in report.gates.rows:
        verdict = row.verdict.value
        critical = " (critical)" if row.gate.critical else " (non-critical)"
        css = {"pass": "ready", "fail": "not_ready"}.get(verdict, "skipped")
        out.append(
            f"<tr><td>{_e(row.scope)}</td><td>{_e(row.gate.name)}</td>"
            f"<td>{_e(row.gate.required)}</td><td>{_e(row.measured_text)}</td>"
            f'<td class="s-{css}">{_e(row.verdict.label)}{"" if verdict == "pass" else critical}</td></tr>'
        )
    out.append("</table>")
    out += [f"<p>note: {_e(n)}</p>" for n in report.gates.notes]
    out.append("</section>")
    return out


def _controls(report: FleetReport, groups: list[str]) -> list[str]:
    def options(values: list[tuple[str, str]]) -> str:
        return "".join(f'<option value="{_e(v)}">{_e(label)}</option>' for v, label in values)

    checks = [(str(i), c) for i, c in enumerate(report.check_names)]
    return [
        '<div id="controls">',
        '<input id="f-text" type="search" placeholder="host or group" aria-label="filter text">',
        '<select id="f-status" aria-label="status">'
        + options([("", "any status"), *((s.value, s.value) for s in Status)])
        + "</select>",
        '<select id="f-check" aria-label="check">'
        + options([("", "all checks"), *checks])
        + "</select>",
        '<select id="f-group" aria-label="group">'
        + options([("", "all groups"), *((g, g) for g in groups)])
        + "</select>",
        '<label><input id="f-problems" type="checkbox"> problems only</label> ',
        '<span id="shown"></span>',
        "</div>",
    ]


class _Strings:
    """One table of distinct strings: a fleet repeats the same messages, details and
    recommendations on many hosts, so results carry indices (2,000 hosts stay a few MB)."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(_text(text), len(self.index))

    @property
    def table(self) -> list[str]:
        return list(self.index)


def _heatmap(
    report: FleetReport, grouped: dict[str, list[HostReport]], strings: _Strings
) -> tuple[list[str], list[Any]]:
    checks = list(report.check_names)
    head = "".join(
        f'<th data-col="{i}" title="sort by {_e(c)}">{_e(c)}</th>' for i, c in enumerate(checks)
    )
    out = [
        '<div id="wrap"><table id="heatmap">',
        f'<thead><tr><th class="hostcol" data-col="-1">host</th>{head}'
        f'<th class="hostcol" data-col="{len(checks)}">verdict</th></tr></thead>',
    ]
    results: list[Any] = []
    width = len(checks) + 2
    for group, hosts in grouped.items():
        out.append(f'<tbody data-group="{_e(group)}">')
        out.append(
            f'<tr class="gh"><th colspan="{width}">{_e(group)} — {_e(_counts_text(hosts))}</th></tr>'
        )
        for host in hosts:
            row = [f'<tr class="host" data-host="{_e(host.host)}" data-s="{host.status.value}">']
            title = f"{host.host} ({host.address})" if host.address else host.host
            row.append(f'<th class="h" title="{_e(title)}">{_e(host.host)}</th>')
            for check in checks:
                result = host.result(check)
                if result is None and host.reason:
                    result = CheckResult(check, host.status, host.reason, host=host.host)
                if result is None:
                    row.append('<td class="c s-none" data-s="none"></td>')
                    continue
                idx = len(results)
                results.append(
                    [
                        strings(host.host),
                        strings(check),
                        result.status.value,
                        strings(result.message),
                        strings(_detail_text(result)),
                        [strings(rec) for rec in result.recommendations],
                    ]
                )
                st = result.status
                row.append(
                    f'<td class="c s-{st.value}" data-s="{st.value}" data-r="{idx}">'
                    f"{_e(st.symbol)}</td>"
                )
            row.append(f'<td class="v s-{host.status.value}">{_e(host.status.label)}</td></tr>')
            out.append("".join(row))
        out.append("</tbody>")
    out.append("</table></div>")
    return out, results


_TREND_BANDS = (  # bottom → top of each bar
    ("ready", Status.READY, "ready"),
    ("degraded", Status.DEGRADED, "degraded"),
    ("not_ready", Status.NOT_READY, "not ready or worse"),
)


def _trend_chart(index: int, check: str, points: Sequence[TrendPoint]) -> str:
    """One check's runs as stacked bars (hosts ready / degraded / not ready or worse),
    oldest left; every bar has a <title> (tooltip and accessible name)."""
    top = max((p.ready + p.degraded + p.not_ready for p in points), default=0) or 1
    width = len(points) * (TREND_BAR + TREND_GAP) + TREND_GAP
    last = points[-1]
    summary = (
        f"{check}: {len(points)} run(s), latest {last.ready} ready, {last.degraded} degraded, "
        f"{last.not_ready} not ready or worse"
    )
    bars = []
    for i, point in enumerate(points):
        x = TREND_GAP + i * (TREND_BAR + TREND_GAP)
        y = float(TREND_HEIGHT)
        rects = []
        for field, status, _label in _TREND_BANDS:
            n = getattr(point, field)
            if not n:
                continue
            h = TREND_HEIGHT * n / top
            y -= h
            rects.append(
                f'<rect class="s-{status.value}" x="{x}" y="{y:.2f}" width="{TREND_BAR}" '
                f'height="{h:.2f}" fill="{_COLOURS[status][0]}"></rect>'
            )
        when = point.started_at.strftime("%Y-%m-%d %H:%M UTC")
        tip = ", ".join(f"{getattr(point, f)} {label}" for f, _s, label in _TREND_BANDS)
        bars.append(
            f'<g class="pt" data-ready="{point.ready}" data-degraded="{point.degraded}" '
            f'data-not-ready="{point.not_ready}"><title>{_e(point.run_id)} · {_e(when)}: '
            f"{_e(tip)}</title>{''.join(rects)}</g>"
        )
    return (
        f'<figure class="trend" data-check="{_e(check)}"><figcaption>{_e(check)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="trend-{index}" '
        f'width="{width}" height="{TREND_HEIGHT}" viewBox="0 0 {width} {TREND_HEIGHT}">'
        f'<title id="trend-{index}">{_e(summary)}</title>{"".join(bars)}</svg></figure>'
    )


def _trends(report: FleetReport, trend: Trend | None) -> list[str]:
    """Per check of this report, its trend over the recorded runs of this host pattern;
    without earlier runs, a sentence saying so."""
    out = ['<section id="trends"><h2>Trend per check</h2>']
    checks = [c for c in report.check_names if trend and trend.get(c)]
    if trend is None or not checks:
        out.append(
            '<p id="no-history">No history: trends appear once the results store (--store) '
            "holds earlier runs of this host pattern.</p></section>"
        )
        return out
    runs = max(len(trend[c]) for c in checks)
    out.append(
        f"<p>Hosts per status in each of the last {runs} run(s) of this host pattern, "
        "oldest left (green ready, amber degraded, red not ready or worse).</p>"
    )
    out += [_trend_chart(i, c, trend[c]) for i, c in enumerate(checks)]
    out.append("</section>")
    return out


_PANEL = """<aside id="detail" class="hidden" aria-live="polite">
<button id="d-close" class="close" title="close">×</button>
<h2><span id="d-host"></span> / <span id="d-check"></span></h2>
<p>Status: <span id="d-status"></span></p>
<h3>Message</h3><pre id="d-message"></pre>
<h3>Details</h3><pre id="d-details"></pre>
<h3>Recommendations</h3><ul id="d-recs"></ul>
</aside>"""

_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'"
)


def render_html(
    report: FleetReport,
    *,
    fail_on: Status = Status.NOT_READY,
    trend: Trend | None = None,
    **_: Any,
) -> str:
    """The page; ``trend`` (per check, recorded runs then this one) adds the trend charts."""
    grouped = _grouped(report)
    strings = _Strings()
    heatmap, results = _heatmap(report, grouped, strings)
    data = {
        "checks": list(report.check_names),
        "hosts": len(report.hosts),
        "rank": {**{s.value: s.rank for s in Status}, "none": -1},
        "results": results,
        "strings": strings.table,
    }
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title>",
        f"<style>{_CSS}{_status_css('')}.s-none{{background:#fff}}</style>",
        '<style id="colstyle"></style>',
        "</head><body>",
        *_header(report, fail_on),
        *_summary(report),
        *_gates(report),
        *store_html(report),
        *_trends(report, trend),
        *_controls(report, list(grouped)),
        *heatmap,
        _PANEL,
        f'<script type="application/json" id="readiness-data">{_json_island(data)}</script>',
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts)


def render_html_fragment(report: FleetReport, max_hosts: int = NOTEBOOK_HOSTS) -> str:
    """The notebook view: a small heat map, no script (notebooks may not run it); each
    cell's tooltip is its escaped message."""
    checks = list(report.check_names)
    css = (
        ".rdy-hm{border-collapse:separate;border-spacing:1px;font:12px system-ui,sans-serif}"
        ".rdy-hm td{width:18px;height:16px;text-align:center}"
        ".rdy-hm th{text-align:left;font-weight:400;padding-right:6px}" + _status_css(".rdy-hm")
    )
    counts = Counter(h.status for h in report.hosts)
    summary = ", ".join(f"{counts[s]} {s.value}" for s in sorted(counts, reverse=True))
    rows = []
    for host in report.hosts[:max_hosts]:
        cells = []
        for check in checks:
            r = host.result(check)
            if r is None:
                cells.append("<td></td>")
                continue
            tip = f"{check}: {r.status.value} — {r.message}"
            cells.append(
                f'<td class="s-{r.status.value}" title="{_e(tip)}">{_e(r.status.symbol)}</td>'
            )
        rows.append(f"<tr><th>{_e(host.host)}</th>{''.join(cells)}</tr>")
    more = len(report.hosts) - max_hosts
    tail = (
        f"<p>… {more} more host(s): render(report, 'html') for the full report</p>"
        if more > 0
        else ""
    )
    head = "".join(f'<th title="{_e(c)}">{i + 1}</th>' for i, c in enumerate(checks))
    legend = " · ".join(f"{i + 1} {_e(c)}" for i, c in enumerate(checks))
    return (
        f'<div class="rdy"><style>{css}</style>'
        f"<p><b>{_e(report.overall_status.label)}</b> · {len(report.hosts)} host(s): {_e(summary)}"
        f" · exit code {report.exit_code()}</p>"
        f'<table class="rdy-hm"><tr><th></th>{head}</tr>{"".join(rows)}</table>'
        f"<p><small>{legend}</small></p>{tail}</div>"
    )
