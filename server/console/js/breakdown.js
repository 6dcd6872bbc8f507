// Breakdown of the current segment by a field: bars with counts and shares.

import { latest, aborted, describe } from './api.js';
import { bars, fmt, pct } from './charts.js';

export const name = 'breakdown';

const $ = (sel) => document.querySelector(sel);
const request = latest();
let ctx;

export function init(c) {
  ctx = c;
  $('#breakdown-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
  $('#breakdown-field').addEventListener('change', run);
  ctx.on('fields', fill);
  ctx.on('view', (v) => { if (v === name && $('#breakdown-field').value) run(); });
}

/** Fields with values to count (text, lists, booleans); an analyst's not personal. */
function fill(catalog) {
  const select = $('#breakdown-field');
  const countable = (f) => f.kinds.some((k) => k === 'text' || k === 'list' || k === 'bool');
  const usable = catalog.fields.filter((f) => countable(f) && (ctx.role === 'admin' || !f.personal));
  select.textContent = '';
  for (const f of usable) select.append(new Option(f.name, f.name));
  const preferred = usable.find((f) => f.name === 'country') || usable[0];
  if (preferred) select.value = preferred.name;
}

async function run() {
  const field = $('#breakdown-field').value;
  const chart = $('#breakdown-chart');
  const summary = $('#breakdown-summary');
  $('#breakdown-error').textContent = '';
  if (!field) { $('#breakdown-error').textContent = 'No field to break down by: the database holds no text, list or boolean attribute yet.'; return; }
  if (!ctx.expr.trim()) { $('#breakdown-error').textContent = 'Type a segment expression first (in the Segment view), e.g. ALL.'; return; }
  const body = { expr: ctx.expr, field, top: Number($('#breakdown-top').value) || 10 };
  if (ctx.at) body.at = ctx.at;
  summary.textContent = 'breaking down…';
  try {
    const r = await request('POST', '/v1/segments/breakdown', body);
    const rows = r.values.map((v) => ({
      label: v.value,
      value: v.count,
      text: `${fmt.format(v.count)} · ${pct(r.count ? v.count / r.count : 0)}`,
    }));
    chart.textContent = '';
    chart.dataset.field = r.field;
    chart.append(bars(rows, { title: `Members of the segment by ${r.field}` }));
    let text = `${ctx.expr}: ${fmt.format(r.count)} members by ${r.field}: ${fmt.format(r.distinct)} distinct values, ${fmt.format(r.missing)} without one.`;
    if (r.suppressed && r.suppressed.groups) {
      text += ` ${fmt.format(r.suppressed.groups)} groups smaller than ${r.suppressed.min_group_size} (${fmt.format(r.suppressed.count)} members) are not shown.`;
    }
    summary.textContent = text;
  } catch (e) {
    if (aborted(e)) return;
    summary.textContent = '';
    chart.textContent = '';
    $('#breakdown-error').textContent = `Breakdown failed: ${describe(e)}`;
  }
}
