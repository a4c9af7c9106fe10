// The mxproxy inspector page. Plain browser JavaScript, served as is (no build step, nothing from elsewhere).
// One page for the proxy, `mxproxy forward` and a cluster primary: /api/page says which, and so which machine
// is drawn and which columns the table has.
//
// Every text that comes from the server is already `printable` (one line, no control characters); it is
// HTML-escaped again here, by esc(), wherever it goes into markup. State names are looked up in Maps, never
// put into a selector.
'use strict';

(() => {
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const $ = (id) => document.getElementById(id);
  const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (v) => String(v === null || v === undefined ? '' : v).replace(/[&<>"']/g, (c) => ESCAPES[c]);

  /** state path ("forwarding", "teardown.closing") → { node, badge, text } */
  const states = new Map();
  let mode = 'live';

  /** What this endpoint is (GET /api/page); the proxy's page until it has answered. */
  let info = { role: 'proxy', machine: 'connection', title: 'mxproxy inspector' };
  const MACHINE_NAMES = { connection: 'connection machine', forward: 'forward machine' };
  const machineName = () => MACHINE_NAMES[info.machine] || 'machine';

  /** The table's columns for this endpoint: [heading, numeric, cell(row, now) → text]. */
  function columns() {
    const cols = [];
    if (info.role === 'cluster') cols.push(['worker', false, (r) => r.worker]);
    cols.push(['id', false, (r) => (info.role === 'cluster' ? r.id.slice(r.id.indexOf('-') + 1) : r.id)]);
    if (info.role === 'forward') {
      cols.push(['local peer', false, (r) => r.peer], ['target', false, (r) => r.target], ['upstream', false, (r) => r.backend]);
    } else {
      cols.push(['peer', false, (r) => r.peer], ['identity', false, (r) => r.identity], ['target', false, (r) => r.target]);
    }
    cols.push(
      ['state', false, (r) => (r.endedAt !== null ? `ended: ${r.reason || '?'}` : r.state)],
      ['up', true, (r) => fmtBytes(r.up)],
      ['down', true, (r) => fmtBytes(r.down)],
      ['age', true, (r, now) => (r.endedAt !== null ? `${fmtAge(r.endedAt - r.acceptedAt)}, ended ${fmtAge(now - r.endedAt)} ago` : fmtAge(now - r.acceptedAt))],
    );
    return cols;
  }

  async function loadInfo() {
    const res = await fetch('/api/page');
    if (res.ok) info = await res.json();
    document.title = info.title;
    document.querySelector('header h1').textContent = info.title;
    $('connections').tHead.rows[0].innerHTML = columns()
      .map(([h, num]) => `<th${num ? ' class="num"' : ''}>${esc(h)}</th>`)
      .join('');
    captionFor(mode);
  }

  // ------------------------------------------------------------------------------------------ the diagram

  async function loadDiagram() {
    const res = await fetch('/diagram.svg');
    if (!res.ok) throw new Error(`diagram: HTTP ${res.status}`);
    const doc = new DOMParser().parseFromString(await res.text(), 'image/svg+xml');
    const svg = document.importNode(doc.documentElement, true);
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    $('diagram').appendChild(svg);
    for (const node of svg.querySelectorAll('g.node')) {
      const title = node.querySelector('title');
      const id = title ? title.textContent : '';
      // Atomic states only; "#initial" and "#anchor" are drawing aids.
      const prefix = `${info.machine}.`;
      if (!id.startsWith(prefix) || id.includes('#')) continue;
      const path = id.slice(prefix.length);
      const box = node.getBBox();
      const badge = document.createElementNS(SVG_NS, 'g');
      badge.setAttribute('class', 'count');
      badge.setAttribute('data-state', path);
      const circle = document.createElementNS(SVG_NS, 'circle');
      circle.setAttribute('cx', String(box.x + box.width));
      circle.setAttribute('cy', String(box.y));
      circle.setAttribute('r', '10');
      const text = document.createElementNS(SVG_NS, 'text');
      text.setAttribute('x', String(box.x + box.width));
      text.setAttribute('y', String(box.y));
      text.textContent = '0';
      badge.append(circle, text);
      node.appendChild(badge);
      states.set(path, { node, badge, text });
    }
    showCounts();
  }

  /** Numbers on the states: the live counts, or the replay's at its current step. */
  function showCounts() {
    const counts = mode === 'live' ? live.counts : replay.counts();
    const entered = mode === 'replay' ? replay.entered() : new Set();
    const chosen = mode === 'live' ? live.chosenState() : replay.chosenState();
    for (const [path, s] of states) {
      const n = counts[path] || 0;
      s.text.textContent = String(n);
      s.badge.setAttribute('class', n > 0 ? 'count busy' : 'count');
      s.node.classList.toggle('entered', entered.has(path));
      s.node.classList.toggle('selected', chosen === path);
    }
  }

  // ------------------------------------------------------------------------------------------ live view

  const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
  const fmtAge = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60000)} min`);
  // Ids count up per process (base 36); in a cluster `<worker>-<id>`: ordered by the accept time first.
  const idOrder = (id) => parseInt(id.slice(id.indexOf('-') + 1), 36) || 0;

  const live = {
    counts: {},
    totals: { live: 0, untracked: 0, gone: 0 },
    rows: new Map(),
    /** The page's clock minus the proxy's. */
    skew: 0,
    chosen: null,
    chosenRow: '',
    chosenState() {
      const row = this.chosen === null ? undefined : this.rows.get(this.chosen);
      return row && row.endedAt === null ? row.state : null;
    },
  };

  function connectFeed() {
    const es = new EventSource('/events');
    es.addEventListener('snapshot', (ev) => {
      const d = JSON.parse(ev.data);
      live.rows.clear();
      for (const r of d.rows) live.rows.set(r.id, r);
      applyFeed(d);
    });
    es.addEventListener('update', (ev) => {
      const d = JSON.parse(ev.data);
      for (const r of d.upsert) live.rows.set(r.id, r);
      for (const id of d.remove) live.rows.delete(id);
      applyFeed(d);
    });
    es.addEventListener('open', () => ($('feed-status').textContent = 'live'));
    es.addEventListener('error', () => ($('feed-status').textContent = 'reconnecting…'));
  }

  function applyFeed(d) {
    live.skew = Date.now() - d.t;
    live.counts = d.counts;
    live.totals = d.totals;
    if (mode === 'live') showCounts();
    renderTable();
    if (live.chosen !== null) {
      const row = live.rows.get(live.chosen);
      const key = row ? `${row.state} ${row.endedAt}` : '';
      if (row && key !== live.chosenRow) {
        live.chosenRow = key;
        void showHistory(live.chosen);
      }
    }
  }

  function renderTable() {
    const now = Date.now() - live.skew;
    // Live pairs first, newest first; then the ended ones, newest first.
    const ended = (r) => (r.endedAt === null ? 0 : 1);
    const rows = [...live.rows.values()].sort(
      (a, b) => ended(a) - ended(b) || b.acceptedAt - a.acceptedAt || idOrder(b.id) - idOrder(a.id) || (b.worker || 0) - (a.worker || 0),
    );
    const cols = columns();
    const html = rows.map((r) => {
      const cls = [r.endedAt !== null ? 'gone' : '', r.id === live.chosen ? 'chosen' : ''].join(' ').trim();
      const cells = cols.map(([, num, cell]) => `<td${num ? ' class="num"' : ''}>${esc(cell(r, now))}</td>`).join('');
      return `<tr data-id="${esc(r.id)}" class="${cls}">${cells}</tr>`;
    });
    $('connections').tBodies[0].innerHTML = html.join('');
    $('no-connections').hidden = rows.length > 0;
    const t = live.totals;
    $('totals').textContent =
      `${t.live} live pair${t.live === 1 ? '' : 's'}` +
      (t.untracked > 0 ? ` (${t.untracked} not listed)` : '') +
      `, ${t.gone} ended in the last minute. Click a connection for its transitions.` +
      (info.role === 'cluster'
        ? ` Summed over ${info.workers} workers, refreshed from their snapshots every ${info.refreshMs} ms.` +
          (t.missing > 0 ? ` ${t.missing} worker${t.missing === 1 ? '' : 's'} did not answer.` : '')
        : '');
  }

  async function showHistory(id) {
    const res = await fetch(`/api/connections/${encodeURIComponent(id)}`);
    if (live.chosen !== id) return;
    const panel = $('history');
    panel.hidden = false;
    if (!res.ok) {
      $('history-title').textContent = `Connection ${id}`;
      $('history-facts').textContent = 'no longer known (it ended more than a minute ago)';
      $('history-list').innerHTML = '';
      return;
    }
    const c = await res.json();
    $('history-title').innerHTML = `Connection ${esc(c.id)}`;
    const facts = [
      c.worker !== undefined ? `worker ${esc(c.worker)}` : '',
      `peer ${esc(c.peer)} on ${esc(c.local)}`,
      c.identity !== null ? `identity ${esc(c.identity)}` : '',
      c.target !== null ? `target ${esc(c.target)}` : '',
      c.backend !== null ? `${info.role === 'forward' ? 'upstream' : 'backend'} ${esc(c.backend)}` : '',
      c.endedAt !== null ? `ended: ${esc(c.reason)}${c.message ? ` (${esc(c.message)})` : ''}` : `now in ${esc(c.state)}`,
    ];
    $('history-facts').innerHTML = facts.filter(Boolean).join('<br>');
    const items = c.history.map(
      (h) => `<li data-to="${esc(h.to)}">+${esc(fmtAge(h.t - c.acceptedAt))} ${esc(h.from === null ? '(start)' : h.from)} → ${esc(h.to)} <span class="muted">on ${esc(h.on)}</span></li>`,
    );
    if (c.dropped > 0) items.unshift(`<li class="muted">… ${c.dropped} earlier transitions</li>`);
    $('history-list').innerHTML = items.join('');
    showCounts();
  }

  $('connections').tBodies[0].addEventListener('click', (ev) => {
    const tr = ev.target instanceof Element ? ev.target.closest('tr') : null;
    if (!tr || !tr.dataset.id) return;
    live.chosen = tr.dataset.id;
    live.chosenRow = '';
    renderTable();
    void showHistory(live.chosen);
  });

  // ------------------------------------------------------------------------------------------ replay view

  const CHECKPOINT = 500;
  const replay = {
    view: null,
    /** Events applied: 0 … steps.length. */
    pos: 0,
    /** connection id → state path after `pos` events, and copies every CHECKPOINT events. */
    states: new Map(),
    checkpoints: [],
    timer: null,
    counts() {
      const out = {};
      for (const s of this.states.values()) if (s !== 'closed') out[s] = (out[s] || 0) + 1;
      return out;
    },
    entered() {
      const step = this.view && this.pos > 0 ? this.view.steps[this.pos - 1] : null;
      return new Set(step ? step.transitions.filter((t) => t.id !== '#proxy').map((t) => t.to) : []);
    },
    chosenState() {
      const step = this.view && this.pos > 0 ? this.view.steps[this.pos - 1] : null;
      return step && step.id !== null ? (this.states.get(step.id) ?? null) : null;
    },
  };

  function applyStep(step) {
    for (const t of step.transitions) {
      if (t.id === '#proxy') continue;
      if (t.to === 'closed') replay.states.delete(t.id);
      else replay.states.set(t.id, t.to);
    }
  }

  function seek(pos) {
    const v = replay.view;
    if (!v) return;
    pos = Math.max(0, Math.min(v.steps.length, pos));
    if (pos < replay.pos) {
      const cp = Math.floor(pos / CHECKPOINT);
      replay.states = new Map(replay.checkpoints[cp] || []);
      replay.pos = cp * CHECKPOINT;
    }
    while (replay.pos < pos) {
      applyStep(v.steps[replay.pos]);
      replay.pos++;
      if (replay.pos % CHECKPOINT === 0) replay.checkpoints[replay.pos / CHECKPOINT] = [...replay.states];
    }
    renderStep();
  }

  function renderStep() {
    const v = replay.view;
    const pos = replay.pos;
    $('step-slider').value = String(pos);
    $('step-label').textContent = `${pos} / ${v.steps.length} events`;
    const step = pos > 0 ? v.steps[pos - 1] : null;
    if (!step) {
      $('step-detail').textContent = 'Before the first event.';
    } else {
      const when = new Date(step.t).toISOString();
      const moves = step.transitions.map((t) => `  ${esc(t.id)}: ${esc(t.from === null ? '(start)' : t.from)} → ${esc(t.to)}`);
      $('step-detail').innerHTML =
        `#${esc(step.s)} ${esc(when)} <b>${esc(step.type)}</b>${step.id !== null ? ` connection ${esc(step.id)}` : ''}\n` +
        `${esc(step.detail)}\n${moves.length ? moves.join('\n') : '  (no transition)'}`;
    }
    // A window of the list around the current step: a long log stays cheap to show.
    const from = Math.max(0, pos - 30);
    const to = Math.min(v.steps.length, pos + 30);
    const items = [];
    for (let i = from; i < to; i++) {
      const s = v.steps[i];
      items.push(
        `<li value="${i + 1}" data-pos="${i + 1}" class="${i + 1 === pos ? 'current' : ''}">${esc(s.type)}${s.id !== null ? ` ${esc(s.id)}` : ''} <span class="muted">${esc(s.detail)}</span></li>`,
      );
    }
    $('step-list').innerHTML = items.join('');
    if (mode === 'replay') showCounts();
  }

  function startReplay(v) {
    stopPlaying();
    replay.view = v;
    replay.pos = 0;
    replay.states = new Map();
    replay.checkpoints = [[]];
    $('step-slider').max = String(v.steps.length);
    const h = v.header;
    const facts = [
      `${esc(v.source)}: ${v.steps.length} events, ${v.connections} connections`,
      h ? `recorded on ${esc(h.host)} by pid ${esc(h.pid)}, mxproxy ${esc(h.mxproxy)}, level ${esc(h.level)}, from ${esc(new Date(h.started).toISOString())}` : 'no header',
      v.stop.reason !== 'end' ? `<span class="bad">${esc(v.stop.reason)}: ${esc(v.stop.message)}</span>` : 'read to its end',
      v.divergence !== null ? `<span class="bad">divergence: ${esc(v.divergence)}</span>` : 'every recorded transition matched',
    ];
    $('replay-info').innerHTML = facts.join('<br>');
    renderStep();
  }

  async function replayResponse(res) {
    const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
    if (!res.ok) {
      $('replay-info').innerHTML = `<span class="bad">${esc(body.error || `HTTP ${res.status}`)}</span>`;
      return;
    }
    startReplay(body);
  }

  let maxUpload = 0;
  async function loadLogList() {
    const res = await fetch('/api/logs');
    if (!res.ok) return;
    const d = await res.json();
    maxUpload = d.maxUploadBytes;
    const select = $('log-file');
    select.innerHTML = d.files.map((f) => `<option value="${esc(f.name)}">${esc(f.name)} (${esc(fmtBytes(f.bytes))})</option>`).join('');
    const none = d.files.length === 0;
    select.disabled = none;
    $('load-file').disabled = none;
    if (!d.configured) select.innerHTML = '<option>no eventLog configured</option>';
  }

  $('load-file').addEventListener('click', async () => {
    const name = $('log-file').value;
    $('replay-info').textContent = 'replaying…';
    await replayResponse(await fetch(`/api/replay?file=${encodeURIComponent(name)}`));
  });

  $('upload').addEventListener('change', async () => {
    const file = $('upload').files[0];
    if (!file) return;
    if (maxUpload && file.size > maxUpload) {
      $('replay-info').innerHTML = `<span class="bad">${esc(file.name)} is ${esc(fmtBytes(file.size))}; at most ${esc(fmtBytes(maxUpload))} can be uploaded (use mxproxy replay)</span>`;
      return;
    }
    $('replay-info').textContent = 'uploading and replaying…';
    const body = await file.arrayBuffer();
    await replayResponse(await fetch('/api/replay', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body }));
  });

  function stopPlaying() {
    if (replay.timer !== null) clearInterval(replay.timer);
    replay.timer = null;
    $('step-play').textContent = 'play';
  }

  $('step-first').addEventListener('click', () => seek(0));
  $('step-prev').addEventListener('click', () => seek(replay.pos - 1));
  $('step-next').addEventListener('click', () => seek(replay.pos + 1));
  $('step-last').addEventListener('click', () => seek(Infinity));
  $('step-slider').addEventListener('input', () => seek(Number($('step-slider').value)));
  $('step-list').addEventListener('click', (ev) => {
    const li = ev.target instanceof Element ? ev.target.closest('li') : null;
    if (li && li.dataset.pos) seek(Number(li.dataset.pos));
  });
  $('step-play').addEventListener('click', () => {
    if (replay.timer !== null) return stopPlaying();
    if (!replay.view) return;
    $('step-play').textContent = 'pause';
    replay.timer = setInterval(() => {
      if (replay.pos >= replay.view.steps.length) return stopPlaying();
      seek(replay.pos + 1);
    }, 400);
  });

  // ------------------------------------------------------------------------------------------ tabs

  function show(which) {
    mode = which;
    $('tab-live').classList.toggle('active', which === 'live');
    $('tab-replay').classList.toggle('active', which === 'replay');
    $('live-view').hidden = which !== 'live';
    $('replay-view').hidden = which !== 'replay';
    captionFor(which);
    if (which === 'replay') void loadLogList();
    showCounts();
  }
  function captionFor(which) {
    const name = machineName();
    const the = `The ${name}`;
    $('diagram-caption').textContent =
      which === 'live'
        ? `${the}: the number on each state is how many pairs are in it now${info.role === 'cluster' ? ', summed over the workers' : ''}.`
        : `${the} during the replay: pairs in each state after the current event; the states it entered are outlined.`;
  }
  $('tab-live').addEventListener('click', () => show('live'));
  $('tab-replay').addEventListener('click', () => show('replay'));

  setInterval(() => mode === 'live' && renderTable(), 1000);
  loadInfo()
    .catch(() => {})
    .then(() => {
      loadDiagram().catch((err) => ($('diagram').textContent = String(err)));
      connectFeed();
    });
})();
