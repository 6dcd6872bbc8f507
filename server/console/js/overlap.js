// The overlap matrix of chosen saved segments, as a heat map: each cell is the members
// in both, shaded by its share of the row's segment.

import { latest, aborted, describe, seg } from './api.js';
import { h, fmt, pct, heat } from './charts.js';

export const name = 'overlap';

const $ = (sel) => document.querySelector(sel);
const request = latest();

export function init(ctx) {
  ctx.on('segments', (segments) => {
    const box = $('#overlap-choices');
    const chosen = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
    for (const el of [...box.children]) if (el.tagName !== 'LEGEND') el.remove();
    if (!segments.length) box.append(h('p', { class: 'hint' }, 'No saved segments yet: save some in the Segment view.'));
    segments.forEach((s, i) => {
      const input = h('input', { type: 'checkbox', id: `overlap-${i}`, value: s.name });
      input.checked = chosen.size ? chosen.has(s.name) : i < 4;
      box.append(h('label', { for: `overlap-${i}` }, input, ` ${s.name}`));
    });
  });
  $('#overlap-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const names = [...document.querySelectorAll('#overlap-choices input:checked')].map((i) => i.value);
    const out = $('#overlap-chart');
    $('#overlap-error').textContent = '';
    if (names.length < 2) { $('#overlap-error').textContent = 'Choose at least two saved segments to compare.'; return; }
    const body = { exprs: names.map(seg) };
    if (ctx.at) body.at = ctx.at;
    try {
      const r = await request('POST', '/v1/segments/overlap', body);
      out.textContent = '';
      out.append(table(names, r));
    } catch (err) {
      if (aborted(err)) return;
      out.textContent = '';
      $('#overlap-error').textContent = `Overlap failed: ${describe(err)}`;
    }
  });
}

function table(names, r) {
  const head = h('tr', {}, h('th', { scope: 'col' }, 'in both ↓ / →'), ...names.map((n) => h('th', { scope: 'col', class: 'num' }, n)));
  const rows = names.map((n, i) => h('tr', {}, h('th', { scope: 'row' }, `${n} (${fmt.format(r.counts[i])})`),
    ...names.map((_, j) => {
      const both = r.matrix[i][j];
      const share = r.counts[i] ? both / r.counts[i] : 0;
      const td = h('td', { 'data-count': String(both), title: `${fmt.format(both)} of ${n}'s ${fmt.format(r.counts[i])} are in ${names[j]}` },
        fmt.format(both), h('span', { class: 'share' }, pct(share)));
      const c = heat(share);
      td.style.background = c.background;
      td.style.color = c.color;
      return td;
    })));
  return h('table', { class: 'table heat' },
    h('caption', { class: 'hint' }, 'Members in both segments; the share is of the row\'s segment.'),
    h('thead', {}, head), h('tbody', {}, ...rows));
}
