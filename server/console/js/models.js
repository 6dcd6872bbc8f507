// A model's report: its top features with their weights, and the gain/lift curve.

import { api, latest, aborted, describe, path } from './api.js';
import { h, bars, line, fmt, pct } from './charts.js';

export const name = 'models';

const $ = (sel) => document.querySelector(sel);
const request = latest();

export function init(ctx) {
  $('#model-name').addEventListener('change', show);
  ctx.on('view', async (v) => {
    if (v !== name) return;
    try {
      const { models } = await api('GET', '/v1/models');
      const select = $('#model-name');
      const was = select.value;
      select.textContent = '';
      for (const m of models) select.append(new Option(`${m.name} (${m.quality}, AUC ${m.auc.toFixed(3)})`, m.name));
      if (models.some((m) => m.name === was)) select.value = was;
      if (!models.length) { $('#model-summary').textContent = 'No models yet: train one with POST /v1/models/{name}/train or `cidb model train`.'; return; }
      show();
    } catch (e) {
      $('#model-error').textContent = `Could not list the models: ${describe(e)}`;
    }
  });
}

async function show() {
  const model = $('#model-name').value;
  if (!model) return;
  $('#model-error').textContent = '';
  try {
    const [report, curve] = await Promise.all([
      request('GET', `/v1/models/${path(model)}`),
      api('GET', `/v1/models/${path(model)}/curve`),
    ]);
    $('#model-summary').textContent = `${report.name}: ${report.quality} (${report.method}), AUC ${report.auc.toFixed(3)}, lift in the top 10 % ${report.lift_at_10.toFixed(2)}×; seed ${fmt.format(report.seed)}, population ${fmt.format(report.population)}, trained ${report.trained_at}.`;
    const warnings = $('#model-warnings');
    warnings.textContent = '';
    for (const w of report.warnings) warnings.append(h('li', {}, w));
    const features = $('#model-features');
    features.textContent = '';
    features.append(bars(report.top_features.slice(0, 15).map((f) => ({
      label: f.feature,
      value: f.weight,
      text: `${f.weight >= 0 ? '+' : ''}${f.weight.toFixed(2)} · seed ${pct(f.seed_share, 0)} / pop ${pct(f.population_share, 0)}`,
    })), { title: 'Feature weights (log-odds)', labelWidth: 260, textWidth: 200, width: 800 }));
    const out = $('#model-curve');
    out.textContent = '';
    const pts = [{ x: 0, y: 0 }, ...curve.points.map((p) => ({ x: p.population_share, y: p.gain }))];
    out.append(line([
      { name: 'seed captured (gain)', points: pts },
      { name: 'random', points: [{ x: 0, y: 0 }, { x: 1, y: 1 }], dashed: true, colour: '#888' },
    ], { title: `Cumulative gain of ${model}`, xLabel: (x) => `${Math.round(x * 100)} %`, yLabel: (y) => `${Math.round(y * 100)} %`, yMin: 0 }));
    out.append(h('table', { class: 'table' },
      h('caption', { class: 'hint' }, 'Top of the population by score: share of the seed captured and lift over random (seed members used in training included).'),
      h('thead', {}, h('tr', {}, ...['score ≥', 'population', 'seed', 'gain', 'lift'].map((t) => h('th', { scope: 'col', class: 'num' }, t)))),
      h('tbody', {}, ...curve.points.map((p) => h('tr', {},
        h('td', { class: 'num' }, p.threshold), h('td', { class: 'num' }, `${fmt.format(p.population)} (${pct(p.population_share, 0)})`),
        h('td', { class: 'num' }, fmt.format(p.seed)), h('td', { class: 'num' }, pct(p.gain)), h('td', { class: 'num' }, `${p.lift.toFixed(2)}×`))))));
  } catch (e) {
    if (aborted(e)) return;
    $('#model-error').textContent = `Could not load the model: ${describe(e)}`;
  }
}
