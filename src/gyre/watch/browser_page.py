"""The gyre page served by the scheduler: one self-contained HTML document that polls ``state.json``.

The scheduler draws the sections (:mod:`gyre.watch.sections`); the page's script only puts
each changed section in its place. ``report.html`` is the same body, filled once.
"""

from __future__ import annotations

from .board import BOARD_STATES, STATE_COLOURS
from .grid import STATE_LABELS
from .sections import SECTION_IDS

__all__ = ["legend_html", "page_html", "sections_body", "state_css"]


def state_css() -> str:
    """CSS shared by the live page and the static summary: cells, their state colours, the sections."""
    rules = [
        ".gyre-row{display:flex;align-items:center;margin:0;line-height:0}",
        ".gyre-row-label{width:56px;flex:none;text-align:right;padding-right:6px;font-size:10px;line-height:13px;"
        "color:#6b7280;font-variant-numeric:tabular-nums}",
        ".gyre-cells{display:flex;gap:2px;margin:1px 0}",
        ".gyre-cell{width:11px;height:11px;border-radius:2px;display:inline-block;box-sizing:border-box}",
        ".gyre-legend span.gyre-cell{vertical-align:middle;margin:0 4px 0 12px}",
        ".gyre-phase{margin:0 0 10px 0}",
    ]
    for state, colour in STATE_COLOURS.items():
        rules.append(f'.gyre-cell[data-state="{state}"]{{background:{colour}}}')
    rules.append(
        '.gyre-cell[data-state="missing"]{background-image:repeating-linear-gradient(45deg,#0000 0 2px,#fff8 2px 4px)}'
    )
    rules.append('.gyre-cell[data-state="excluded"]{border:1px dashed #9ca3af}')
    return "\n".join(rules) + _SECTIONS_CSS


_SECTIONS_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px 24px;color:#1f2937}
h1{font-size:20px;margin:0 0 4px 0} h2{font-size:15px;margin:18px 0 6px 0}
.gyre-muted{color:#6b7280;font-size:13px}
.gyre-phase-head{font-size:13px;font-weight:600;margin:0 0 2px 62px}
.gyre-phase-head span{font-weight:400;color:#4b5563}
table{border-collapse:collapse;font-size:13px} td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #e5e7eb}
td:first-child,th:first-child{text-align:left}
.gyre-failure{font-family:ui-monospace,monospace;font-size:12px;margin:3px 0;white-space:pre-wrap;cursor:pointer}
.gyre-failure-group{margin:4px 0;border-left:3px solid #d7263d;padding-left:8px}
.gyre-traceback pre{margin:2px 0 8px 16px;color:#374151;font-size:11px;white-space:pre-wrap;background:#f9fafb}
.gyre-bar{display:inline-block;width:160px;height:9px;background:#e5e7eb;border-radius:3px;
  margin:0 8px;vertical-align:middle}
.gyre-bar>i{display:block;height:100%;background:#3b82f6;border-radius:3px}
#gyre-running div{font-size:12px;margin:2px 0}
.gyre-timeline{max-width:100%;height:auto}
.gyre-histograms{display:flex;flex-wrap:wrap;gap:12px}
#gyre-status span{white-space:nowrap}
"""


_BODY_SECTIONS = """<div class="gyre-legend gyre-muted">__LEGEND__</div>
<h2>Runs × phases</h2><div class="gyre-muted">each row starts with its first run number</div>
<div id="gyre-grid">__gyre-grid__</div>
<h2>Timeline: one row per worker</h2><div id="gyre-timeline">__gyre-timeline__</div>
<div class="gyre-muted" id="gyre-phase-key">__gyre-phase-key__</div>
<h2>How long each phase took</h2><div id="gyre-histograms">__gyre-histograms__</div>
<h2>Failures, grouped (click for the tracebacks)</h2><div id="gyre-failures">__gyre-failures__</div>
<h2>Counts and timings per phase</h2><table id="gyre-counts">__gyre-counts__</table>
<h2>Workers</h2><table id="gyre-workers">__gyre-workers__</table>
__RUNNING__
<div id="gyre-children-block"__CHILDREN_HIDDEN__><h2>Adaptive children</h2>
<div id="gyre-children">__gyre-children__</div></div>
"""


def sections_body(sections: dict[str, str], *, live: bool = True) -> str:
    """The body of both pages below their header: the sections' places, filled with ``sections``.

    ``live=False`` (``report.html``) leaves out what only a running job has: what runs now.
    """
    running = '<h2>Running now</h2><div id="gyre-running">__gyre-running__</div>' if live else ""
    body = _BODY_SECTIONS.replace("__RUNNING__", running).replace("__LEGEND__", legend_html())
    body = body.replace("__CHILDREN_HIDDEN__", "" if sections.get("gyre-children") else " hidden")
    for name in SECTION_IDS:
        body = body.replace(f"__{name}__", sections.get(name, ""))
    return body


_SCRIPT = """
const base = location.pathname.replace(/\\/+$/, '');
let selected = new URLSearchParams(location.search).get('pipeline');
let shown = {id: null, version: null, html: {}};

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fill(id, html) {
  const node = document.getElementById(id);
  if (!node || shown.html[id] === html) return;
  // details the reader opened stay open when the section is drawn again
  const open = new Set(Array.from(node.querySelectorAll('details[open][data-key]')).map(d => d.dataset.key));
  node.innerHTML = html;
  for (const d of node.querySelectorAll('details[data-key]')) if (open.has(d.dataset.key)) d.open = true;
  shown.html[id] = html;
}

function updateHeader(state) {
  const select = document.getElementById('gyre-select');
  const wanted = state.pipelines.map(p => p.id + (p.finished ? '+' : '')).join(',');
  if (select.dataset.ids !== wanted) {
    select.replaceChildren(...state.pipelines.slice().reverse().map(p => {
      const when = new Date(p.started * 1000).toLocaleString();
      return el('option', {value: p.id}, p.pipeline + ' — ' + when + (p.finished ? '' : ' (running)'));
    }));
    select.dataset.ids = wanted;
  }
  const board = state.board;
  if (board) select.value = board.id;
  document.getElementById('gyre-title').textContent = board ? 'gyre · ' + board.pipeline : 'gyre';
  if (!board) {
    document.getElementById('gyre-status').textContent = 'no gyre pipeline has reported to this scheduler yet';
    return;
  }
  document.body.dataset.finished = board.finished ? 'true' : 'false';
  document.body.dataset.pipeline = board.id;
  document.getElementById('gyre-children-block').hidden = !board.children.length;
}

async function poll() {
  try {
    const query = new URLSearchParams();
    if (selected) query.set('pipeline', selected);
    if (shown.id !== null && (!selected || selected === shown.id)) {
      query.set('pipeline', shown.id); query.set('since', String(shown.version));
    }
    const response = await fetch(base + '/state.json?' + query, {cache: 'no-store'});
    const state = await response.json();
    if (state.board && state.board.id !== shown.id) shown = {id: state.board.id, version: null, html: {}};
    updateHeader(state);
    for (const [id, html] of Object.entries(state.html || {})) fill(id, html);
    if (state.board) shown.version = state.board.version;
    document.body.dataset.rendered = 'true';
    document.getElementById('gyre-error').textContent = '';
  } catch (error) {
    document.getElementById('gyre-error').textContent = 'cannot reach the scheduler: ' + error;
  }
  setTimeout(poll, __POLL_MS__);
}

document.getElementById('gyre-select').addEventListener('change', event => {
  selected = event.target.value;
  shown = {id: null, version: null, html: {}};
});
poll();
"""

_BODY = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gyre</title>
<style>__CSS__</style></head>
<body data-rendered="false">
<h1 id="gyre-title">gyre</h1>
<div class="gyre-muted"><span id="gyre-status">loading…</span></div>
<div class="gyre-muted">pipeline <select id="gyre-select"></select> · <a href="status">dask status</a>
 (its Progress panel counts only the tasks the scheduler holds now: the whole job's per-phase progress is here)</div>
<div id="gyre-error" class="gyre-muted" style="color:#d7263d"></div>
__SECTIONS__
<script>__SCRIPT__</script>
</body></html>
"""


def legend_html() -> str:
    """The colour legend of the states, as HTML."""
    return "".join(
        f'<span class="gyre-cell" data-state="{state}"></span>{STATE_LABELS[state]}' for state in BOARD_STATES
    )


def page_html(*, poll_ms: int = 1000) -> str:
    """The live page: asks the scheduler every ``poll_ms`` for the sections of the selected pipeline."""
    script = _SCRIPT.replace("__POLL_MS__", str(int(poll_ms)))
    page = _BODY.replace("__CSS__", state_css()).replace("__SECTIONS__", sections_body({}))
    return page.replace("__SCRIPT__", script)
