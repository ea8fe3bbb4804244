"""The gyre page served by the scheduler: one self-contained HTML document that polls ``state.json``."""

from __future__ import annotations

from .board import BOARD_STATES, STATE_COLOURS

__all__ = ["legend_html", "page_html", "state_css"]


def state_css() -> str:
    """CSS shared by the live page and the static summary: cells and their state colours."""
    rules = [
        ".gyre-cells{display:flex;flex-wrap:wrap;gap:2px;margin:4px 0 12px 0}",
        ".gyre-cell{width:11px;height:11px;border-radius:2px;display:inline-block}",
        ".gyre-legend span.gyre-cell{vertical-align:middle;margin:0 4px 0 12px}",
    ]
    for state, colour in STATE_COLOURS.items():
        rules.append(f'.gyre-cell[data-state="{state}"]{{background:{colour}}}')
    rules.append(
        '.gyre-cell[data-state="missing"]{background-image:repeating-linear-gradient(45deg,#0000 0 2px,#fff8 2px 4px)}'
    )
    return "\n".join(rules)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:16px 24px;color:#1f2937}
h1{font-size:20px;margin:0 0 4px 0} h2{font-size:15px;margin:18px 0 6px 0}
.gyre-muted{color:#6b7280;font-size:13px}
.gyre-phase-head{font-size:13px;font-weight:600} .gyre-phase-head span{font-weight:400;color:#4b5563}
table{border-collapse:collapse;font-size:13px} td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #e5e7eb}
td:first-child,th:first-child{text-align:left}
.gyre-failure{font-family:ui-monospace,monospace;font-size:12px;margin:3px 0;white-space:pre-wrap}
.gyre-bar{display:inline-block;width:160px;height:9px;background:#e5e7eb;border-radius:3px;
  margin:0 8px;vertical-align:middle}
.gyre-bar>i{display:block;height:100%;background:#3b82f6;border-radius:3px}
#gyre-running div{font-size:12px;margin:2px 0}
"""

_SCRIPT = """
const STATES = __STATES__;
const base = location.pathname.replace(/\\/+$/, '');
let selected = new URLSearchParams(location.search).get('pipeline');
let built = null;

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function build(board) {
  const grid = document.getElementById('gyre-grid');
  grid.replaceChildren();
  const cells = {}, summaries = {};
  for (const phase of board.phases) {
    const block = el('div', {'class': 'gyre-phase', 'data-phase': phase});
    const head = el('div', {'class': 'gyre-phase-head'}, phase + ' ');
    const summary = el('span', {'class': 'gyre-phase-counts'});
    head.appendChild(summary);
    summaries[phase] = summary;
    const row = el('div', {'class': 'gyre-cells'});
    const frag = document.createDocumentFragment();
    cells[phase] = board.runs.map(run => {
      const cell = el('span', {'class': 'gyre-cell', 'data-run': String(run), 'data-state': 'waiting'});
      frag.appendChild(cell);
      return cell;
    });
    row.appendChild(frag);
    block.append(head, row);
    grid.appendChild(block);
  }
  const key = board.phases.join('\\u0000') + '|' + board.runs.length;
  built = {id: board.id, key: key, cells: cells, summaries: summaries, grid: {}};
}

function updateGrid(board) {
  const key = board.phases.join('\\u0000') + '|' + board.runs.length;
  if (!built || built.id !== board.id || built.key !== key) build(board);
  const errors = {};
  for (const f of board.failures) errors[f.phase + ':' + f.run] = f.error;
  const running = {};
  for (const r of board.running) running[r.phase + ':' + r.run] = r;
  for (const phase of board.phases) {
    const codes = board.grid[phase], old = built.grid[phase] || '', cells = built.cells[phase];
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i], run = board.runs[i], id = phase + ':' + run;
      if (code === old[i] && code !== 'r' && code !== 'f') continue;
      const state = STATES[code] || 'waiting';
      const cell = cells[i];
      cell.dataset.state = state;
      let title = 'run ' + run + ' · ' + phase + ' · ' + state;
      if (running[id] && running[id].total) title += ' ' + running[id].completed + '/' + running[id].total;
      if (errors[id]) title += '\\n' + errors[id];
      cell.title = title;
    }
    built.grid[phase] = codes;
    const c = board.counts[phase];
    const finished = c.done + c.cached + c.failed + c.skipped;
    const parts = [finished + '/' + (board.runs.length - c.missing) + ' finished'];
    for (const s of ['running', 'failed', 'skipped', 'cached', 'missing']) if (c[s]) parts.push(c[s] + ' ' + s);
    built.summaries[phase].textContent = '— ' + parts.join(', ');
  }
}

function muted(text) {
  return el('div', {'class': 'gyre-muted'}, text);
}

function fmt(seconds) {
  if (seconds === null || seconds === undefined) return '';
  return seconds < 100 ? seconds.toFixed(2) + ' s' : (seconds / 60).toFixed(1) + ' min';
}

function updateTables(board) {
  const counts = document.getElementById('gyre-counts');
  const head = el('tr'); head.appendChild(el('th', {}, 'phase'));
  for (const s of Object.values(STATES)) head.appendChild(el('th', {}, s));
  for (const s of ['mean', 'median', 'max']) head.appendChild(el('th', {}, s));
  const rows = [head];
  for (const phase of board.phases) {
    const tr = el('tr', {'data-phase': phase}); tr.appendChild(el('td', {}, phase));
    for (const s of Object.values(STATES)) tr.appendChild(el('td', {'data-state': s}, String(board.counts[phase][s])));
    const t = board.timings[phase];
    for (const k of ['mean', 'median', 'max']) tr.appendChild(el('td', {}, fmt(t[k])));
    rows.push(tr);
  }
  counts.replaceChildren(...rows);

  const failures = document.getElementById('gyre-failures');
  failures.replaceChildren(...board.failures.map(f => {
    const child = f.lineage.length ? ' (child ' + f.lineage.join('/') + ')' : '';
    const attrs = {'class': 'gyre-failure', 'data-run': String(f.run), 'data-phase': f.phase};
    return el('div', attrs, 'run ' + f.run + ' · ' + f.phase + child + ': ' + f.error);
  }));
  const moreFailures = board.n_failures - board.failures.length;
  if (moreFailures > 0) failures.appendChild(muted('… and ' + moreFailures + ' more'));
  if (!board.n_failures) failures.appendChild(muted('none'));

  const running = document.getElementById('gyre-running');
  running.replaceChildren(...board.running.map(r => {
    const line = el('div', {}, r.phase + ' · run ' + r.run + (r.parts ? ' · ' + r.parts : ''));
    if (r.total) {
      const bar = el('span', {'class': 'gyre-bar'}); const fill = el('i');
      fill.style.width = Math.min(100, 100 * r.completed / r.total).toFixed(1) + '%';
      bar.appendChild(fill); line.appendChild(bar);
      line.appendChild(document.createTextNode(r.completed + '/' + r.total));
    }
    return line;
  }));
  const moreRunning = board.n_running - board.running.length;
  if (moreRunning > 0) running.appendChild(muted('… and ' + moreRunning + ' more'));
  if (!board.n_running) running.appendChild(muted(board.finished ? 'nothing: the pipeline has ended' : 'nothing yet'));

  const children = document.getElementById('gyre-children');
  children.replaceChildren(...board.children.map(c => {
    const counts = Object.entries(c.counts).map(([s, n]) => n + ' ' + s).join(', ');
    const text = 'generation ' + c.generation + ' · ' + c.lineage.join(' / ') + ' · ' + counts;
    return el('div', {'class': 'gyre-child', 'data-generation': String(c.generation)}, text);
  }));
  document.getElementById('gyre-children-block').hidden = !board.children.length;
}

function updateHeader(state, board) {
  const select = document.getElementById('gyre-select');
  const wanted = state.pipelines.map(p => p.id + (p.finished ? '+' : '')).join(',');
  if (select.dataset.ids !== wanted) {
    select.replaceChildren(...state.pipelines.slice().reverse().map(p => {
      const when = new Date(p.started * 1000).toLocaleString();
      return el('option', {value: p.id}, p.pipeline + ' — ' + when + (p.finished ? '' : ' (running)'));
    }));
    select.dataset.ids = wanted;
  }
  if (board) select.value = board.id;
  document.getElementById('gyre-title').textContent = board ? 'gyre · ' + board.pipeline : 'gyre';
  const status = document.getElementById('gyre-status');
  if (!board) { status.textContent = 'no gyre pipeline has reported to this scheduler yet'; return; }
  const end = board.finished || Date.now() / 1000;
  const total = board.runs.length * board.phases.length;
  let finished = 0;
  for (const phase of board.phases) {
    const c = board.counts[phase];
    finished += c.done + c.cached + c.failed + c.skipped + c.missing;
  }
  status.textContent = (board.finished ? 'finished' : 'running') + ' · ' + finished + '/' + total
    + ' (phase, run) finished · ' + board.n_failures + ' failed · ' + fmt(end - board.started) + ' elapsed';
  document.body.dataset.finished = board.finished ? 'true' : 'false';
  document.body.dataset.pipeline = board.id;
}

async function poll() {
  try {
    const query = selected ? '?pipeline=' + encodeURIComponent(selected) : '';
    const response = await fetch(base + '/state.json' + query, {cache: 'no-store'});
    const state = await response.json();
    updateHeader(state, state.board);
    if (state.board) { updateGrid(state.board); updateTables(state.board); }
    document.body.dataset.rendered = 'true';
    document.getElementById('gyre-error').textContent = '';
  } catch (error) {
    document.getElementById('gyre-error').textContent = 'cannot reach the scheduler: ' + error;
  }
  setTimeout(poll, __POLL_MS__);
}

document.getElementById('gyre-select').addEventListener('change', event => {
  selected = event.target.value;
  built = null;
});
poll();
"""

_BODY = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gyre</title>
<style>__STYLE__
__CELLS__</style></head>
<body data-rendered="false">
<h1 id="gyre-title">gyre</h1>
<div class="gyre-muted"><span id="gyre-status">loading…</span>
 · pipeline <select id="gyre-select"></select> · <a href="status">dask status</a></div>
<div id="gyre-error" class="gyre-muted" style="color:#d7263d"></div>
<div class="gyre-legend gyre-muted">__LEGEND__</div>
<h2>Runs × phases</h2><div id="gyre-grid"></div>
<h2>Counts and timings per phase</h2><table id="gyre-counts"></table>
<h2>Running now</h2><div id="gyre-running"></div>
<h2>Failures</h2><div id="gyre-failures"></div>
<div id="gyre-children-block" hidden><h2>Adaptive children</h2><div id="gyre-children"></div></div>
<script>__SCRIPT__</script>
</body></html>
"""


def legend_html() -> str:
    """The colour legend of the states, as HTML."""
    return "".join(f'<span class="gyre-cell" data-state="{state}"></span>{state}' for state in BOARD_STATES)


def page_html(*, poll_ms: int = 1000) -> str:
    """The live page: draws the board of the selected pipeline (the latest by default) every ``poll_ms``."""
    import json

    states = json.dumps({code: state for state, code in BOARD_STATES.items()})
    script = _SCRIPT.replace("__STATES__", states).replace("__POLL_MS__", str(int(poll_ms)))
    page = _BODY.replace("__STYLE__", _STYLE).replace("__CELLS__", state_css()).replace("__LEGEND__", legend_html())
    return page.replace("__SCRIPT__", script)
