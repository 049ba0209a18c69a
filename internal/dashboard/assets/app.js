// shardwatch dashboard: polls the JSON API and draws it. Every value from
// the API reaches the page through textContent (never innerHTML), so no
// data can inject markup; the CSP forbids inline scripts anyway.
'use strict';

(function () {
  // window.shardwatch is the page's state, read by the browser test too.
  const state = {
    config: null,
    series: {},
    top: null,
    bots: null,
    alarms: null,
    charts: {},
    errors: {}, // API errors by panel
    updates: 0,
    // Problems a test (or a curious operator in the console) should see.
    cspViolations: [],
    scriptErrors: [],
  };
  window.shardwatch = state;
  document.addEventListener('securitypolicyviolation', (e) => {
    state.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
  });
  window.addEventListener('error', (e) => {
    state.scriptErrors.push(String(e.message));
  });

  const $ = (id) => document.getElementById(id);
  const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const RESOLUTIONS = ['second', 'minute', 'hour'];
  const CHART_HEIGHT = 200;

  function fmtInt(n) {
    return n == null ? '–' : integer.format(n);
  }

  function fmtBytes(n) {
    if (n == null) return '–';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let v = n;
    let i = 0;
    while (Math.abs(v) >= 1000 && i < units.length - 1) {
      v /= 1000;
      i++;
    }
    return (i === 0 ? integer.format(v) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
  }

  function fmtPct(f) {
    return f == null ? '–' : (100 * f).toFixed(1) + '%';
  }

  // Times are shown in UTC, as the buckets in DynamoDB are.
  function fmtTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (isNaN(d)) return '–';
    return d.toISOString().slice(11, 19);
  }

  function fmtDateTime(iso) {
    if (!iso) return '–';
    const d = new Date(iso);
    if (isNaN(d)) return '–';
    return d.toISOString().slice(0, 19).replace('T', ' ');
  }

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  // fillTable replaces tbody's rows: rows is a list of cell lists.
  function fillTable(table, rows, emptyText, columns) {
    const tbody = table.tBodies[0];
    const frag = document.createDocumentFragment();
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.className = 'empty';
      const td = cell(emptyText);
      td.colSpan = columns;
      tr.appendChild(td);
      frag.appendChild(tr);
    }
    for (const cells of rows) {
      const tr = document.createElement('tr');
      for (const c of cells) tr.appendChild(c);
      frag.appendChild(tr);
    }
    tbody.replaceChildren(frag);
  }

  async function getJSON(path) {
    const resp = await fetch(path, { cache: 'no-store', headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await resp.json();
    } catch (e) {
      throw new Error(path + ': HTTP ' + resp.status);
    }
    if (!resp.ok) throw new Error(path + ': ' + (body && body.error ? body.error : 'HTTP ' + resp.status));
    return body;
  }

  // Integer-friendly y-axis steps: counts have no fractions.
  const COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2500, 5e3, 1e4, 2e4, 25e3, 5e4,
    1e5, 2e5, 25e4, 5e5, 1e6, 2e6, 5e6, 1e7, 2e7, 5e7, 1e8, 1e9, 1e10];

  // xLabels formats x-axis ticks (Unix seconds) in UTC, 24 h.
  function xLabels(res) {
    return (u, splits) => splits.map((ts) => {
      if (ts == null) return '';
      const iso = new Date(ts * 1000).toISOString();
      if (res === 'second') {
        const ss = iso.slice(17, 19);
        return ss === '00' ? iso.slice(11, 16) : ':' + ss;
      }
      if (res === 'minute') return iso.slice(11, 16);
      const hm = iso.slice(11, 16);
      return hm === '00:00' ? iso.slice(5, 10) : hm;
    });
  }

  const COLORS = ['#2563eb', '#dc6803', '#7a5af8', '#d92d20', '#039855', '#0e9384', '#c11574', '#475467'];

  // view is what the page shows, from the URL (?events=a,b&hours=N&hist=M)
  // and the controls; only values the server offers are accepted.
  const view = { events: [], hours: 24, hist: 15, alarmPage: 1 };
  const HOURS = [6, 12, 24, 48, 72, 168];

  function readURL() {
    const q = new URLSearchParams(location.search);
    const offered = state.config.events;
    const evs = (q.get('events') || '').split(',').filter((e) => offered.includes(e));
    view.events = evs.length ? Array.from(new Set(evs)).slice(0, 8) : [state.config.event];
    const h = parseInt(q.get('hours'), 10);
    view.hours = HOURS.includes(h) ? h : (h >= 1 && h <= 168 ? h : 24);
    const m = parseInt(q.get('hist'), 10);
    view.hist = state.config.histogram_periods.includes(m) ? m : 15;
  }

  function writeURL() {
    const q = new URLSearchParams(location.search);
    q.delete('token'); // never keep the token in the address bar
    q.set('events', view.events.join(','));
    q.set('hours', String(view.hours));
    q.set('hist', String(view.hist));
    history.replaceState(null, '', '?' + q.toString());
  }

  function makeChart(res) {
    const el = $('chart-' + res);
    const series = [{}];
    view.events.forEach((ev, i) => {
      const c = COLORS[i % COLORS.length];
      series.push({
        label: ev,
        stroke: c,
        width: 2,
        fill: view.events.length === 1 ? 'rgba(37, 99, 235, 0.12)' : undefined,
        spanGaps: false,
        points: { show: res === 'hour', size: 5 },
        value: (u, v) => fmtInt(v),
      });
    });
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height: CHART_HEIGHT,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      series: series,
      axes: [
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, values: xLabels(res) },
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, size: 60, incrs: COUNT_INCRS, values: (u, vals) => vals.map((v) => fmtInt(v)) },
      ],
      legend: { show: true },
    };
    return new uPlot(opts, [[]].concat(view.events.map(() => [])), el);
  }

  function buildCharts() {
    for (const res of RESOLUTIONS) {
      if (state.charts[res]) state.charts[res].destroy();
      state.charts[res] = makeChart(res);
    }
  }

  function renderSeries(res, m) {
    state.series[res] = m;
    const data = [m.times].concat(m.series.map((s) => s.counts));
    if (data.length !== state.charts[res].series.length) return; // the view changed meanwhile
    state.charts[res].setData(data);
    const today = new Date().toISOString().slice(0, 10) === String(m.now).slice(0, 10);
    $('total-' + res).textContent = m.series.map((s) => s.event + ' ' + fmtInt(s.total)).join(' · ') + ' · until ' +
      (today ? fmtTime(m.now) : fmtDateTime(m.now)) + ' UTC';
    // Old data: say where the records are instead of an unexplained flat line.
    const notes = m.series.filter((s) => s.total === 0).map((s) => s.newest
      ? s.event + ': none in this span; newest bucket ' + s.newest.replace('T', ' ') + ' UTC' +
        (state.config.time === 'wall' ? ' (consumer dashboard --time data shows it)' : '')
      : s.event + ': no counters yet (processor counters' + (res === 'second' ? ' with seconds: true' : '') + ')');
    $('note-' + res).textContent = notes.join(' · ');
  }

  function fmtAge(sec) {
    if (sec < 90) return sec + ' s ago';
    if (sec < 5400) return Math.round(sec / 60) + ' min ago';
    if (sec < 172800) return Math.round(sec / 3600) + ' h ago';
    return Math.round(sec / 86400) + ' days ago';
  }

  // windowLabel says which window a panel shows and how old it is, or
  // plainly why there is none.
  function windowLabel(r) {
    if (!r.found) {
      if (!r.configured) return 'no results: the ' + r.processor + ' processor is not configured (add processors.' + r.processor + ' to the worker config)';
      return 'no closed window yet: the ' + r.processor + ' processor runs; a window shows once it closes';
    }
    const sameDay = String(r.window_start).slice(0, 10) === String(r.now).slice(0, 10);
    return 'window ' + (sameDay ? fmtTime(r.window_start) : fmtDateTime(r.window_start)) + '–' + fmtTime(r.window_end) + ' UTC, ' +
      fmtAge(r.age_seconds) + (r.final ? '' : ' (not final yet)');
  }

  function setWindow(id, r) {
    const el = $(id);
    el.textContent = windowLabel(r);
    el.className = 'sub' + (!r.found ? ' none' : (r.age_seconds > 300 ? ' stale' : ''));
  }

  // fillBars draws a horizontal bar list: items of {label, value, text}.
  function fillBars(el, items, emptyText) {
    const frag = document.createDocumentFragment();
    const max = Math.max(0, ...items.map((x) => x.value));
    if (items.length === 0) {
      const d = document.createElement('div');
      d.className = 'empty';
      d.textContent = emptyText;
      frag.appendChild(d);
    }
    for (const x of items) {
      const label = document.createElement('div');
      label.className = 'bar-label';
      label.textContent = x.label;
      const track = document.createElement('div');
      track.className = 'bar-track';
      const fill = document.createElement('div');
      fill.className = 'bar-fill';
      fill.style.width = (max > 0 ? (100 * x.value) / max : 0).toFixed(1) + '%'; // CSSOM, allowed by the CSP
      track.appendChild(fill);
      const value = document.createElement('div');
      value.className = 'bar-value';
      value.textContent = x.text;
      frag.append(label, track, value);
    }
    el.replaceChildren(frag);
  }

  function renderTable(t) {
    state.table = t;
    $('table-sub').textContent = 'last ' + t.hours + ' h, ' + view.events.join(', ') + ' (hours without records left out)';
    const rows = t.rows.map((r) => [cell(r.hour.replace('T', ' ') + ':00'), cell(r.event), cell(fmtInt(r.count) + (r.final ? '' : ' (running)'), 'num')]);
    fillTable($('counters-grid'), rows, 'no counters for these events in the last ' + t.hours + ' h (processor counters)', 3);
  }

  function renderTop(t) {
    state.top = t;
    setWindow('top-window', t);
    setWindow('hosts-window', t);
    const rows = t.top_requests.map((e, i) => [
      cell(String(i + 1), 'num'),
      cell(e.key),
      cell(fmtInt(e.requests) + (e.err_requests ? ' (+' + fmtInt(e.err_requests) + ')' : ''), 'num'),
      cell(fmtBytes(e.bytes), 'num'),
      cell(t.requests ? fmtPct(e.requests / t.requests) : '–', 'num'),
    ]);
    fillTable($('top-table'), rows, t.found ? 'no traffic in this window' : windowLabel(t), 5);
    $('top-foot').textContent = t.found
      ? fmtInt(t.requests) + ' requests, ' + fmtBytes(t.bytes) + ' in the window from ' + t.merged + ' shard(s)' +
        (t.exact ? '; counts exact' : '; counts are lower bounds (+ error)')
      : '';
    const hosts = t.hosts.map((e) => [cell(e.key), cell(fmtInt(e.requests), 'num'), cell(fmtBytes(e.bytes), 'num')]);
    fillTable($('hosts-table'), hosts, t.found ? 'no hosts in this window' : windowLabel(t), 3);
  }

  function renderBots(b) {
    state.bots = b;
    setWindow('bots-window', b);
    $('bot-share').textContent = b.found ? fmtPct(b.bot_share) : '–';
    $('bot-requests').textContent = b.found ? fmtInt(b.bot_requests) + ' / ' + fmtInt(b.requests) : '–';
    $('bot-flagged').textContent = b.found ? fmtInt(b.flagged_ips) : '–';
    const rows = b.flagged.map((f) => [cell(f.ip), cell(f.reasons.join(', ')), cell(fmtInt(f.requests), 'num')]);
    fillTable($('bots-table'), rows, b.found ? 'no flagged IPs in this window' : windowLabel(b), 3);
  }

  function renderHistogram(h) {
    state.histogram = h;
    const el = $('hist-window');
    if (!h.found) {
      setWindow('hist-window', h);
    } else if (h.fallback) {
      el.textContent = 'nothing in the last ' + view.hist + ' min; newest ' + windowLabel(h);
      el.className = 'sub stale';
    } else {
      el.textContent = 'last ' + view.hist + ' min: ' + h.windows + ' window(s), newest ' + windowLabel(h).replace(/^window /, '');
      el.className = 'sub';
    }
    const bars = h.buckets.map((b) => ({ label: b.label, value: b.count, text: fmtInt(b.count) }));
    fillBars($('hist-bars'), bars, windowLabel(h));
    $('hist-foot').textContent = h.found ? fmtInt(h.requests) + ' responses, ' + fmtBytes(h.bytes) +
      (h.hosts.length ? '; most bytes: ' + h.hosts.slice(0, 3).map((x) => x.key + ' ' + fmtBytes(x.bytes)).join(', ') : '') : '';
  }

  function renderEdges(e) {
    state.edges = e;
    setWindow('edges-window', e);
    const rows = e.rows.map((r) => [cell(r.distribution), cell(r.edge), cell(fmtInt(r.requests), 'num'), cell(fmtBytes(r.bytes), 'num')]);
    fillTable($('edges-table'), rows, e.found ? 'no CloudFront requests in this window' : windowLabel(e), 4);
    $('edges-foot').textContent = e.found ? 'total ' + fmtInt(e.requests) + ' requests, ' + fmtBytes(e.bytes) +
      (e.other.requests ? '; other pairs ' + fmtBytes(e.other.bytes) : '') +
      (e.edges.length ? '; by edge: ' + e.edges.slice(0, 4).map((x) => x.edge + ' ' + fmtBytes(x.bytes)).join(', ') : '') : '';
  }

  function shareBars(list) {
    return list.map((x) => ({ label: x.name, value: x.hits, text: fmtPct(x.share) + ' (' + fmtInt(x.hits) + ')' }));
  }

  function renderVisitors(v) {
    state.visitors = v;
    setWindow('visitors-window', v);
    fillBars($('browser-bars'), shareBars(v.browser), v.found ? 'no hits' : windowLabel(v));
    fillBars($('os-bars'), shareBars(v.os), v.found ? 'no hits' : '');
    $('visitors-foot').textContent = v.found ? fmtInt(v.hits) + ' hits; ' +
      v.class.map((c) => c.name + ' ' + fmtPct(c.share)).join(', ') : '';
  }

  function renderAnomaly(a) {
    state.anomaly = a;
    setWindow('anomaly-window', a);
    fillBars($('anomaly-bars'), a.buckets.map((b) => ({ label: 'score ' + b.label, value: b.count, text: fmtInt(b.count) })),
      a.found ? 'no score distribution in this window' : windowLabel(a));
    const rows = a.top.map((p) => [cell(fmtTime(p.time)), cell(p.key), cell(p.score.toFixed(2), 'num'),
      cell((p.values || []).map((x) => String(Math.round(x * 100) / 100)).join(', '))]);
    fillTable($('anomaly-table'), rows, a.found ? 'no scored records' : '(top-scored records of the window)', 4);
    $('anomaly-foot').textContent = a.found ? fmtInt(a.points) + ' points scored (' + fmtInt(a.warming) + ' warming up), ' +
      fmtInt(a.above_threshold) + ' above the alarm threshold' + (a.max_score != null ? '; max score ' + a.max_score.toFixed(2) : '') : '';
  }

  const ALARMS_PER_PAGE = 10;

  function renderAlarms(a) {
    state.alarms = a.alarms;
    $('alarms-count').textContent = a.alarms.length ? 'newest first, ' + a.alarms.length + ' on this page' : '';
    $('alarms-page').textContent = 'page ' + a.page;
    $('alarms-prev').disabled = a.page <= 1;
    $('alarms-next').disabled = !a.has_more;
    const rows = a.alarms.map((x) => [
      cell(fmtDateTime(x.period)),
      cell(x.alarm),
      cell(fmtInt(x.orders), 'num'),
      cell(fmtInt(x.threshold), 'num'),
      cell(fmtInt(x.trigger_count || 0), 'num'),
      cell(fmtTime(x.window_start) + '–' + fmtTime(x.window_end)),
      cell(x.published ? 'yes' : 'not yet', x.published ? 'yes' : 'no'),
      cell(x.raised_by || '–'),
      cell(x.top.slice(0, 3).map((t) => t.kind + ' ' + t.key + ': ' + t.orders).join('; ') || '–'),
    ]);
    fillTable($('alarms-table'), rows, a.page > 1 ? 'no older alarms' : 'no alarms raised (processor orderflood, alarms ' + state.config.alarms.join(', ') + ')', 9);
  }

  function showErrors() {
    const msgs = Object.values(state.errors);
    const box = $('error');
    box.textContent = msgs.join(' · ');
    box.hidden = msgs.length === 0;
    $('status').className = 'status-dot ' + (msgs.length ? 'bad' : 'ok');
  }

  let timer = null;
  let running = false;
  let pending = false;

  // refresh polls every panel; a change while a poll runs queues one more.
  async function refresh() {
    if (running) {
      pending = true;
      return;
    }
    running = true;
    clearTimeout(timer);
    $('hour-title').textContent = 'Per hour, last ' + view.hours + ' h';
    const evs = encodeURIComponent(view.events.join(','));
    const hourPoints = Math.min(168, Math.max(1, view.hours));
    const jobs = {
      second: () => getJSON('/api/series?res=second&events=' + evs).then((s) => renderSeries('second', s)),
      minute: () => getJSON('/api/series?res=minute&events=' + evs).then((s) => renderSeries('minute', s)),
      hour: () => getJSON('/api/series?res=hour&events=' + evs + '&points=' + hourPoints).then((s) => renderSeries('hour', s)),
      table: () => getJSON('/api/table?events=' + evs + '&hours=' + hourPoints).then(renderTable),
      top: () => getJSON('/api/top').then(renderTop),
      bots: () => getJSON('/api/bots').then(renderBots),
      histogram: () => getJSON('/api/histogram?minutes=' + view.hist).then(renderHistogram),
      edges: () => getJSON('/api/edges').then(renderEdges),
      visitors: () => getJSON('/api/visitors').then(renderVisitors),
      anomaly: () => getJSON('/api/anomaly').then(renderAnomaly),
      alarms: () => getJSON('/api/alarms?limit=' + ALARMS_PER_PAGE + '&page=' + view.alarmPage).then(renderAlarms),
    };
    const names = Object.keys(jobs);
    const results = await Promise.allSettled(names.map((n) => jobs[n]()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') state.errors[names[i]] = String(r.reason && r.reason.message ? r.reason.message : r.reason);
      else delete state.errors[names[i]];
    });
    showErrors();
    state.updates++;
    $('updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC · every ' +
      (state.config.refresh_ms / 1000) + ' s';
    running = false;
    if (pending) {
      pending = false;
      refresh();
      return;
    }
    timer = setTimeout(refresh, state.config.refresh_ms);
  }

  function option(value, text, selected) {
    const o = document.createElement('option');
    o.value = String(value);
    o.textContent = text;
    o.selected = selected;
    return o;
  }

  function buildControls() {
    const picker = $('event-picker');
    picker.replaceChildren();
    state.config.events.forEach((ev) => {
      const label = document.createElement('label');
      label.className = 'event-choice';
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = ev;
      box.checked = view.events.includes(ev);
      box.addEventListener('change', () => {
        const picked = Array.from(picker.querySelectorAll('input:checked')).map((x) => x.value);
        if (picked.length === 0) {
          box.checked = true;
          return;
        }
        view.events = picked;
        changed(true);
      });
      const sw = document.createElement('span');
      sw.className = 'swatch';
      const i = view.events.indexOf(ev);
      sw.style.background = i >= 0 ? COLORS[i % COLORS.length] : 'transparent';
      label.append(box, sw, document.createTextNode(ev));
      picker.appendChild(label);
    });
    const hs = $('hours-select');
    hs.replaceChildren(...Array.from(new Set(HOURS.concat([view.hours]))).sort((a, b) => a - b)
      .map((h) => option(h, 'last ' + h + ' h', h === view.hours)));
    const ps = $('hist-select');
    ps.replaceChildren(...state.config.histogram_periods.map((m) => option(m, m < 60 ? 'last ' + m + ' min' : 'last ' + m / 60 + ' h', m === view.hist)));
  }

  function changed(rebuild) {
    writeURL();
    if (rebuild) {
      buildControls();
      buildCharts();
    }
    refresh();
  }

  async function start() {
    try {
      state.config = await getJSON('/api/config');
    } catch (e) {
      state.errors.config = String(e.message || e);
      showErrors();
      setTimeout(start, 2000);
      return;
    }
    $('app').textContent = state.config.app + (state.config.time === 'data' ? ' (data time)' : '');
    $('event-name').textContent = 'the chosen';
    $('counters-table').textContent = state.config.app + '-counters';
    readURL();
    writeURL();
    buildControls();
    buildCharts();
    $('hours-select').addEventListener('change', (e) => {
      view.hours = parseInt(e.target.value, 10);
      changed(false);
    });
    $('hist-select').addEventListener('change', (e) => {
      view.hist = parseInt(e.target.value, 10);
      changed(false);
    });
    $('alarms-prev').addEventListener('click', () => {
      view.alarmPage = Math.max(1, view.alarmPage - 1);
      refresh();
    });
    $('alarms-next').addEventListener('click', () => {
      view.alarmPage = Math.min(100, view.alarmPage + 1);
      refresh();
    });
    window.addEventListener('resize', () => {
      for (const res of RESOLUTIONS) {
        state.charts[res].setSize({ width: Math.max($('chart-' + res).clientWidth, 300), height: CHART_HEIGHT });
      }
    });
    refresh();
  }

  start();
})();
