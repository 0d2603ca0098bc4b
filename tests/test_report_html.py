"""The HTML fleet report in a real headless Chromium (Debian's ``chromium``): screenshot,
rendered DOM, hostile messages as text, no network, filters and sorting, 2,000 hosts."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from readiness.model import FleetReport, Status
from readiness.report import render, save
from readiness.report._clean import xml_text
from readiness.report.html import render_html_fragment

from .report_fixtures import CHECKS, HOSTILE, HOSTILE_HOST, big_fleet, every_status_fleet

# Chromium's own background services (update checks, account probe): not requests of the page.
BROWSER_SERVICE_DOMAINS = ("google.com", "googleapis.com", "gvt1.com", "gstatic.com")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    if binary is None:  # CI installs it (.ci/run): a missing browser fails, never skips
        pytest.fail("chromium not found: apt-get install chromium (see .ci/run)")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    argv = [
        binary,
        "--no-sandbox",  # root in CI
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # any outside request fails visibly
        *args,
    ]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False
    )


class _Dom(HTMLParser):
    """Rows of the heat map, the detail panel's texts and every element name."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, list[str]]] = []
        self.tags: list[str] = []
        self.texts: dict[str, str] = {}
        self.attrs_of: dict[str, dict[str, str]] = {}
        self._capture: str | None = None
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        if "id" in a:
            self.attrs_of[a["id"]] = a
        if tag == "tr" and "host" in a.get("class", "").split():
            self.rows.append((a["data-host"], []))
        elif tag == "td" and "c" in a.get("class", "").split() and self.rows:
            self.rows[-1][1].append(a["class"])
        if a.get("id", "").startswith("d-"):
            self._capture = a["id"]
            self.texts[self._capture] = ""
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("pre", "span", "h2", "ul"):
            self._capture = None
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._capture:
            self.texts[self._capture] += data
        if self._in_title:
            self.title += data


def _dom(tmp_path: Path, url: str) -> _Dom:
    res = chromium(tmp_path, "--dump-dom", url)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Dom()
    dom.feed(res.stdout)
    return dom


def _result_index(report: FleetReport, host: str, check: str) -> int:
    """The data-r index of a result: results in group order, then host, then check."""
    seen = 0
    groups: dict[str, list[str]] = {}
    for h in report.hosts:
        groups.setdefault(h.groups[0] if h.groups else "ungrouped", []).append(h.host)
    for names in groups.values():
        for name in names:
            for c in report.check_names:
                if (name, c) == (host, check):
                    return seen
                seen += 1
    raise KeyError((host, check))


def test_the_heat_map_in_chromium_has_one_cell_per_host_and_check(tmp_path: Path) -> None:
    report = every_status_fleet()
    page = save(render(report, "html"), tmp_path / "fleet.html")
    dom = _dom(tmp_path, page.as_uri())
    assert dom.attrs_of["detail"]["class"] == "hidden"
    rows = dict(dom.rows)
    assert set(rows) == {h.host for h in report.hosts}
    for host in report.hosts:
        expected = []
        for check in CHECKS:
            r = host.result(check)
            expected.append(f"c s-{(r.status if r else host.status).value}")
        assert rows[host.host] == expected, host.host
    assert sum(len(cells) for cells in rows.values()) == len(report.hosts) * len(CHECKS)


def test_a_hostile_message_is_shown_as_text_and_never_runs(tmp_path: Path) -> None:
    report = every_status_fleet()
    page = save(render(report, "html"), tmp_path / "fleet.html")
    idx = _result_index(report, HOSTILE_HOST, "environment")
    dom = _dom(tmp_path, f"{page.as_uri()}#r={idx}")
    assert dom.attrs_of["detail"]["class"] == ""  # the deep link opened the panel
    assert dom.texts["d-host"] == HOSTILE_HOST
    assert dom.texts["d-message"] == xml_text(HOSTILE)  # as text, NUL and ESC dropped
    assert "<img src=x onerror=" in dom.texts["d-message"]
    assert "img" not in dom.tags and dom.tags.count("script") == 2  # ours: data + code
    assert dom.title == report.title  # onerror would have set it to 'pwned'
    assert "pwned" not in dom.title


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of pixels."""
    blob = path.read_bytes()
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind, body = blob[pos + 4 : pos + 8], blob[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = (
        zlib.decompress(idat),
        width * channels,
        [],
        bytearray(width * channels),
    )
    for y in range(height):
        filt, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if filt == 1:
                line[x] = (line[x] + a) & 255
            elif filt == 2:
                line[x] = (line[x] + b) & 255
            elif filt == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif filt == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, channels, rows


def test_the_screenshot_shows_the_status_colours(tmp_path: Path) -> None:
    page = save(render(every_status_fleet(), "html"), tmp_path / "fleet.html")
    shot = tmp_path / "shot.png"
    res = chromium(tmp_path, "--window-size=1200,800", f"--screenshot={shot}", page.as_uri())
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    width, channels, rows = _png_pixels(shot)
    colours = {
        row[x : x + 3] for row in rows[::3] for x in range(0, width * channels, channels * 3)
    }
    assert len(colours) > 20  # not blank
    for rgb in ((22, 163, 74), (220, 38, 38), (245, 158, 11)):  # ready, not_ready, degraded
        assert bytes(rgb) in colours, rgb


def _requested_urls(netlog: Path) -> set[str]:
    events = json.loads(netlog.read_text())["events"]
    return {e["params"]["url"] for e in events if isinstance(e.get("params", {}).get("url"), str)}


def _page_requests(urls: set[str]) -> set[str]:
    def browser_service(url: str) -> bool:
        host = urlsplit(url).hostname or ""
        return any(host == d or host.endswith("." + d) for d in BROWSER_SERVICE_DOMAINS)

    return {u for u in urls if not u.startswith("file:") and not browser_service(u)}


def test_the_report_makes_no_network_request(tmp_path: Path) -> None:
    report = every_status_fleet()
    text = render(report, "html")
    # the page's own markup names no URL; the hostile text's links (shown as text) aside,
    # which the net log below proves are never requested either
    own = text.replace("http://evil.example", "")
    assert "http://" not in own and "https://" not in own and "//" not in own.split("<script")[0]
    assert "evil.example" in text  # the host's link is in the page, as text
    assert "default-src 'none'" in text  # CSP: nothing may be fetched even by mistake
    page = save(text, tmp_path / "fleet.html")
    idx = _result_index(report, HOSTILE_HOST, "environment")
    log = tmp_path / "net.json"
    chromium(tmp_path, f"--log-net-log={log}", "--dump-dom", f"{page.as_uri()}#r={idx}")
    assert _page_requests(_requested_urls(log)) == set()
    # the probe sees a request when a page does make one
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><img src="http://readiness.invalid/pixel.png">')
    control_log = tmp_path / "control.json"
    chromium(tmp_path, f"--log-net-log={control_log}", "--dump-dom", control.as_uri())
    assert _page_requests(_requested_urls(control_log)) == {"http://readiness.invalid/pixel.png"}


_DRIVER = """<script>
(function(){
  var out={}, rows=function(){return Array.prototype.filter.call(
    document.querySelectorAll("tr.host"),function(r){return !r.classList.contains("hidden");})
    .map(function(r){return r.getAttribute("data-host");});};
  var set=function(id,v){var el=document.getElementById(id);
    if(el.type==="checkbox"){el.checked=v;}else{el.value=v;}
    el.dispatchEvent(new Event("change"));};
  out.all=rows();
  set("f-status","error"); out.error=rows(); set("f-status","");
  set("f-problems",true); out.problems=rows(); set("f-problems",false);
  set("f-group","web"); out.web=rows(); set("f-group","");
  set("f-text","hostile"); out.text=rows(); set("f-text","");
  set("f-check","1"); set("f-status","degraded"); out.check=rows();
  out.colstyle=document.getElementById("colstyle").textContent;
  set("f-check",""); set("f-status","");
  document.querySelector('#heatmap th[data-col="0"]').click(); out.sorted=rows();
  document.querySelector('#heatmap td[data-r="4"]').click();
  out.hash=location.hash;
  var pre=document.createElement("pre"); pre.id="driver-out";
  pre.textContent=JSON.stringify(out); document.body.appendChild(pre);
})();
</script></body></html>"""


def test_filters_sorting_and_click_work_in_chromium(tmp_path: Path) -> None:
    """The report's own script, driven by a script appended to a copy of the page."""
    report = every_status_fleet()
    page = tmp_path / "driven.html"
    page.write_text(render(report, "html").replace("</body></html>", _DRIVER))
    res = chromium(tmp_path, "--dump-dom", page.as_uri())
    start = res.stdout.index('<pre id="driver-out">') + len('<pre id="driver-out">')
    raw = res.stdout[start : res.stdout.index("</pre>", start)]
    out = json.loads(
        raw.replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )
    assert out["all"] == [
        h.host
        for h in sorted(
            report.hosts,
            key=lambda h: ("db", "web", "hostile", "ungrouped").index(
                h.groups[0] if h.groups else "ungrouped"
            ),
        )
    ]
    assert out["error"] == ["h-error"]
    assert set(out["problems"]) == {h.host for h in report.hosts} - {"h-ready", "h-skipped"}
    assert set(out["web"]) == {"h-ready", "h-not_ready", "h-unreachable"}
    assert out["text"] == [HOSTILE_HOST]
    assert set(out["check"]) == {"h-degraded", HOSTILE_HOST}  # degraded on check 1 only
    assert "nth-child(2)" in out["colstyle"] and "nth-child(3)" not in out["colstyle"]
    db = ["h-interrupted", "h-error", "h-degraded", "h-skipped"]  # worst first on column 0
    assert out["sorted"][:4] == db
    assert out["hash"] == "#r=4"


def test_two_thousand_hosts_render_and_load(tmp_path: Path) -> None:
    report = big_fleet(2000)
    started = time.perf_counter()
    text = render(report, "html")
    render_s = time.perf_counter() - started
    assert render_s < 15, render_s
    assert len(text) < 8_000_000, len(text)  # strings are shared, not repeated per cell
    page = save(text, tmp_path / "big.html")
    dom = _dom(tmp_path, page.as_uri())
    assert len(dom.rows) == 2000
    assert sum(len(cells) for _, cells in dom.rows) == 2000 * 14


def test_repr_html_is_a_small_script_free_heat_map() -> None:
    report = every_status_fleet()
    fragment = report._repr_html_()
    assert fragment == render_html_fragment(report)
    assert "<script" not in fragment and "<img" not in fragment
    assert fragment.count('class="s-') == sum(len(h.results) for h in report.hosts)
    assert "&lt;img src=x onerror=" in fragment  # the tooltip holds the escaped message
    big = big_fleet(120)._repr_html_()
    assert "… 70 more host(s)" in big and big.count("<tr>") == 51


def test_html_statuses_cover_every_status() -> None:
    text = render(every_status_fleet(), "html")
    for status in Status:
        assert f"s-{status.value}" in text


def test_bidi_controls_in_host_text_are_shown_not_obeyed(tmp_path: Path) -> None:
    """A host's message with U+202E (right-to-left override) reached the page raw, so the
    browser showed the rest of it backwards ("…exe.txt" for "…txt.exe"), unlike the text
    and Markdown reports, which show it as \\u202e. Through `readiness show --format html`."""
    from tests.store.helpers import fleet, meta, sqlite_store
    from tests.store.test_store_cli import readiness

    bidi = "backup ok \u202etxt.exe\u202c and \u2067isolated\u2069"
    report = fleet({"web1": {"environment": (Status.NOT_READY, bidi)}})
    store = tmp_path / "h.db"
    with sqlite_store(store) as db:
        db.record(report, meta())
    shown = readiness("show", "latest", "--format", "html", store=store)
    assert shown.returncode == 0, shown.stderr
    page = save(shown.stdout, tmp_path / "bidi.html")
    res = chromium(tmp_path, "--dump-dom", f"{page.as_uri()}#r=0")
    assert res.returncode == 0, res.stderr[-2000:]
    dom = _Dom()
    dom.feed(res.stdout)
    assert dom.texts["d-message"] == ("backup ok \\u202etxt.exe\\u202c and \\u2067isolated\\u2069")
    assert not any(
        ch in res.stdout for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    )
