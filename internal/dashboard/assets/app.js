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

  function makeChart(res) {
    const el = $('chart-' + res);
    const opts = {
      width: Math.max(el.clientWidth, 300),
      height: CHART_HEIGHT,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      scales: {
        x: { time: true },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      series: [
        {},
        {
          label: state.config.event,
          stroke: '#2563eb',
          width: 2,
          fill: 'rgba(37, 99, 235, 0.12)',
          spanGaps: false,
          points: { show: res === 'hour', size: 5 },
          value: (u, v) => fmtInt(v),
        },
      ],
      axes: [
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, values: xLabels(res) },
        { stroke: '#667085', grid: { stroke: '#eef1f5' }, size: 60, incrs: COUNT_INCRS, values: (u, vals) => vals.map((v) => fmtInt(v)) },
      ],
      legend: { show: true },
    };
    return new uPlot(opts, [[], []], el);
  }

  function renderSeries(res, s) {
    state.series[res] = s;
    const xs = s.points.map((p) => p.time);
    const ys = s.points.map((p) => p.count);
    state.charts[res].setData([xs, ys]);
    // The date only when it is not today's (a replay on the data's clock).
    const today = new Date().toISOString().slice(0, 10) === String(s.now).slice(0, 10);
    $('total-' + res).textContent = 'total ' + fmtInt(s.total) + ' · until ' +
      (today ? fmtTime(s.now) : fmtDateTime(s.now)) + ' UTC';
  }

  function windowLabel(r) {
    if (!r.found) return 'no closed window yet';
    return fmtTime(r.window_start) + '–' + fmtTime(r.window_end) + ' UTC' + (r.final ? '' : ' (not final yet)');
  }

  function renderTop(t) {
    state.top = t;
    $('top-window').textContent = windowLabel(t);
    $('hosts-window').textContent = t.found ? windowLabel(t) : '';
    const rows = t.top_requests.map((e, i) => [
      cell(String(i + 1), 'num'),
      cell(e.key),
      cell(fmtInt(e.requests) + (e.err_requests ? ' (+' + fmtInt(e.err_requests) + ')' : ''), 'num'),
      cell(fmtBytes(e.bytes), 'num'),
      cell(t.requests ? fmtPct(e.requests / t.requests) : '–', 'num'),
    ]);
    fillTable($('top-table'), rows, 'no traffic in the last windows', 5);
    $('top-foot').textContent = t.found
      ? fmtInt(t.requests) + ' requests, ' + fmtBytes(t.bytes) + ' in the window from ' + t.merged + ' shard(s)' +
        (t.exact ? '; counts exact' : '; counts are lower bounds (+ error)')
      : '';
    const hosts = t.hosts.map((e) => [cell(e.key), cell(fmtInt(e.requests), 'num'), cell(fmtBytes(e.bytes), 'num')]);
    fillTable($('hosts-table'), hosts, 'no hosts yet', 3);
  }

  function renderBots(b) {
    state.bots = b;
    $('bots-window').textContent = windowLabel(b);
    $('bot-share').textContent = b.found ? fmtPct(b.bot_share) : '–';
    $('bot-requests').textContent = b.found ? fmtInt(b.bot_requests) + ' / ' + fmtInt(b.requests) : '–';
    $('bot-flagged').textContent = b.found ? fmtInt(b.flagged_ips) : '–';
    const rows = b.flagged.map((f) => [cell(f.ip), cell(f.reasons.join(', ')), cell(fmtInt(f.requests), 'num')]);
    fillTable($('bots-table'), rows, 'no flagged IPs', 3);
  }

  function renderAlarms(a) {
    state.alarms = a.alarms;
    $('alarms-count').textContent = a.alarms.length ? 'newest ' + a.alarms.length : '';
    const rows = a.alarms.map((x) => [
      cell(fmtDateTime(x.period)),
      cell(x.alarm),
      cell(fmtInt(x.orders), 'num'),
      cell(fmtInt(x.threshold), 'num'),
      cell(fmtTime(x.window_start) + '–' + fmtTime(x.window_end)),
      cell(x.published ? 'yes' : 'not yet', x.published ? 'yes' : 'no'),
      cell(x.raised_by || '–'),
      cell(x.top.slice(0, 3).map((t) => t.kind + ' ' + t.key + ': ' + t.orders).join('; ') || '–'),
    ]);
    fillTable($('alarms-table'), rows, 'no alarms', 8);
  }

  function showErrors() {
    const msgs = Object.values(state.errors);
    const box = $('error');
    box.textContent = msgs.join(' · ');
    box.hidden = msgs.length === 0;
    $('status').className = 'status-dot ' + (msgs.length ? 'bad' : 'ok');
  }

  async function refresh() {
    const jobs = {
      second: () => getJSON('/api/second').then((s) => renderSeries('second', s)),
      minute: () => getJSON('/api/minute').then((s) => renderSeries('minute', s)),
      hour: () => getJSON('/api/hour').then((s) => renderSeries('hour', s)),
      top: () => getJSON('/api/top').then(renderTop),
      bots: () => getJSON('/api/bots').then(renderBots),
      alarms: () => getJSON('/api/alarms').then(renderAlarms),
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
    setTimeout(refresh, state.config.refresh_ms);
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
    $('event-name').textContent = state.config.event;
    $('counters-table').textContent = state.config.app + '-counters';
    for (const res of RESOLUTIONS) state.charts[res] = makeChart(res);
    window.addEventListener('resize', () => {
      for (const res of RESOLUTIONS) {
        state.charts[res].setSize({ width: Math.max($('chart-' + res).clientWidth, 300), height: CHART_HEIGHT });
      }
    });
    refresh();
  }

  start();
})();
