// Admins only: look a person up by e-mail, phone or profile id and see the unified
// profile with the provenance of every value. The view is removed for other roles.

import { api, describe } from './api.js';
import { h } from './charts.js';

export const name = 'lookup';

const $ = (sel) => document.querySelector(sel);

export function init() {
  $('#lookup-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const by = $('#lookup-by').value;
    const value = $('#lookup-value').value.trim();
    const out = $('#lookup-result');
    $('#lookup-error').textContent = '';
    out.textContent = 'looking up…';
    try {
      const r = await api('GET', `/v1/profiles/lookup?${new URLSearchParams({ [by]: value })}`);
      out.textContent = '';
      out.append(h('h3', {}, `Profile ${r.profile.id}`), render(r.profile));
      if (r.merges && r.merges.length) out.append(h('h3', {}, 'Merge log'), plain(r.merges));
    } catch (err) {
      out.textContent = '';
      $('#lookup-error').textContent = err.status === 404 ? `No profile with that ${by}.` : `Lookup failed: ${describe(err)}`;
    }
  });
}

const time = (ms) => (typeof ms === 'number' ? new Date(ms).toISOString().replace('.000Z', 'Z') : '');

function table(caption, headers, rows) {
  return h('table', { class: 'table' }, h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...(rows.length ? rows : [[h('span', { class: 'hint' }, 'none')]]).map((r) => h('tr', {}, ...r.map((c) => h('td', {}, c))))));
}

/** A stored value (`{"Text": "GB"}`, `{"Number": 3}`, ...) as text. */
function value(v) {
  if (v && typeof v === 'object') {
    const [kind, x] = Object.entries(v)[0] || [];
    return Array.isArray(x) ? x.join(', ') : kind === 'Date' ? new Date(x * 86_400_000).toISOString().slice(0, 10) : String(x);
  }
  return String(v);
}

/** The unified profile: every value with where it came from (source) and when. */
function render(p) {
  const attrs = [];
  for (const [field, a] of Object.entries(p.attributes || {})) {
    if (a.Scalar) attrs.push([field, value(a.Scalar.value), a.Scalar.provenance.source, time(a.Scalar.provenance.observed_at)]);
    for (const item of a.List || []) {
      attrs.push([field, item.value, item.provenance.map((x) => x.source).join(', '), item.provenance.map((x) => time(x.observed_at)).join(', ')]);
    }
  }
  const consent = Object.entries(p.consent || {}).flatMap(([purpose, changes]) =>
    changes.map((c) => [purpose, c.granted ? 'granted' : 'withdrawn', c.provenance.source, time(c.provenance.observed_at)]));
  return h('div', {},
    h('p', {}, `${p.records} record${p.records === 1 ? '' : 's'}, ${p.events} event${p.events === 1 ? '' : 's'}${p.merged_from.length ? `, merged from profiles ${p.merged_from.join(', ')}` : ''}.`),
    table('Identifiers', ['type', 'value', 'source', 'observed'], p.identifiers.map((i) => [i.id.kind, i.id.value, i.provenance.source, time(i.provenance.observed_at)])),
    table('Attributes', ['field', 'value', 'source', 'observed'], attrs),
    table('Consent', ['purpose', 'state', 'source', 'observed'], consent),
    table('Sources', ['source', 'records', 'first seen', 'last seen'], Object.entries(p.sources || {}).map(([s, x]) => [s, String(x.records), time(x.first_seen), time(x.last_seen)])));
}

/** Any JSON (the merge log) as nested lists. */
function plain(v) {
  if (Array.isArray(v)) return h('ol', {}, ...v.map((x) => h('li', {}, plain(x))));
  if (v && typeof v === 'object') return h('dl', { class: 'profile' }, ...Object.entries(v).flatMap(([k, x]) => [h('dt', {}, k), h('dd', {}, plain(x))]));
  return String(v);
}
