// A saved segment's size over time: the daily counts the server records.

import { latest, aborted, describe, path } from './api.js';
import { h, line, fmt } from './charts.js';

export const name = 'history';

const $ = (sel) => document.querySelector(sel);
const request = latest();
const DAY = 86_400_000;

export function init(ctx) {
  ctx.on('segments', (segments) => {
    const select = $('#history-segment');
    const was = select.value;
    select.textContent = '';
    for (const s of segments) select.append(new Option(s.name, s.name));
    if (segments.some((s) => s.name === was)) select.value = was;
    if (ctx.view === name) run();
  });
  $('#history-segment').addEventListener('change', run);
  ctx.on('view', (v) => { if (v === name) run(); });
}

async function run() {
  const segment = $('#history-segment').value;
  const out = $('#history-chart');
  $('#history-error').textContent = '';
  if (!segment) { out.textContent = ''; $('#history-error').textContent = 'No saved segments yet: save one in the Segment view.'; return; }
  try {
    const r = await request('GET', `/v1/segments/${path(segment)}/history`);
    out.textContent = '';
    if (!r.points.length) { out.append(h('p', { class: 'hint' }, 'No counts recorded yet.')); return; }
    const points = r.points.map((p) => ({ x: Date.parse(`${p.day}T00:00:00Z`) / DAY, y: p.count }));
    const day = (x) => new Date(Math.round(x) * DAY).toISOString().slice(0, 10);
    // Whole days as ticks, at most five of them.
    const dayTicks = (x0, x1) => {
      const step = Math.max(1, Math.ceil((x1 - x0) / 4));
      const ticks = [];
      for (let d = Math.ceil(x0); d <= x1; d += step) ticks.push(d);
      return ticks;
    };
    out.append(line([{ name: `${segment}: members`, points }], {
      title: `Members of ${segment} by day`, xLabel: day, yLabel: (y) => fmt.format(Math.round(y)), yMin: 0, xTicks: dayTicks,
    }));
    const last = r.points[r.points.length - 1];
    const days = r.points.length === 1 ? '1 day' : `${r.points.length} days`;
    out.append(h('p', {}, `${days} recorded; ${last.day}: ${fmt.format(last.count)} members.`));
  } catch (e) {
    if (aborted(e)) return;
    out.textContent = '';
    $('#history-error').textContent = `Could not load the history: ${describe(e)}`;
  }
}
