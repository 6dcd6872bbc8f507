// Exports of hashed audiences (downloaded) and the destinations with their last sync.

import { api, download, describe, path } from './api.js';
import { h, fmt } from './charts.js';

export const name = 'audiences';

const $ = (sel) => document.querySelector(sel);

export function init(ctx) {
  ctx.on('segments', (segments) => {
    const select = $('#export-segment');
    const was = select.value;
    select.textContent = '';
    for (const s of segments) select.append(new Option(s.name, s.name));
    if (segments.some((s) => s.name === was)) select.value = was;
  });
  ctx.on('view', (v) => { if (v === name) destinations(); });
  $('#export-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const segment = $('#export-segment').value;
    const format = $('#export-format').value;
    const status = $('#export-status');
    $('#export-error').textContent = '';
    if (!segment) { $('#export-error').textContent = 'No saved segment to export: save one in the Segment view.'; return; }
    status.textContent = 'exporting…';
    try {
      const ext = format.endsWith('csv') ? 'csv' : 'jsonl';
      const bytes = await download('POST', `/v1/segments/${path(segment)}/export`, { format }, `${segment}-${format}.${ext}`);
      status.textContent = `Downloaded ${fmt.format(bytes)} bytes (hashed identifiers only).`;
    } catch (err) {
      status.textContent = '';
      $('#export-error').textContent = `Export failed: ${describe(err)}`;
    }
  });
}

async function destinations() {
  const body = $('#destinations tbody');
  $('#destinations-error').textContent = '';
  try {
    const r = await api('GET', '/v1/destinations');
    body.textContent = '';
    if (!r.destinations.length) body.append(h('tr', {}, h('td', { colspan: '5' }, 'No destinations yet.')));
    for (const d of r.destinations) {
      const p = d.last_push;
      const last = p ? `${new Date(p.at).toISOString()} · ${p.outcome} · +${fmt.format(p.adds)} −${fmt.format(p.removes)}${p.error ? ` · ${p.error}` : ''}` : 'never pushed';
      body.append(h('tr', {}, h('td', {}, d.destination.name), h('td', {}, d.destination.segment), h('td', {}, d.destination.format),
        h('td', { class: 'num' }, fmt.format(d.sent_profiles)), h('td', {}, last)));
    }
  } catch (e) {
    $('#destinations-error').textContent = `Could not list the destinations: ${describe(e)}`;
  }
}
