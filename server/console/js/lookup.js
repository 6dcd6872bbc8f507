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
      if (r.merges && r.merges.length) out.append(h('h3', {}, 'Merge log'), render(r.merges));
    } catch (err) {
      out.textContent = '';
      $('#lookup-error').textContent = err.status === 404 ? `No profile with that ${by}.` : `Lookup failed: ${describe(err)}`;
    }
  });
}

const TIMES = new Set(['observed_at', 'first_seen', 'last_seen', 'at']);

/** Any JSON as nested definition lists; instants (ms) shown as dates. */
function render(v, key = '') {
  if (Array.isArray(v)) {
    if (!v.length) return h('span', { class: 'hint' }, 'none');
    return h('ol', {}, ...v.map((x) => h('li', {}, render(x))));
  }
  if (v && typeof v === 'object') {
    return h('dl', { class: 'profile' }, ...Object.entries(v).flatMap(([k, x]) => [h('dt', {}, k), h('dd', {}, render(x, k))]));
  }
  if (TIMES.has(key) && typeof v === 'number') return new Date(v).toISOString();
  return String(v);
}
