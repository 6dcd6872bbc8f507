// Small SVG charts drawn by hand: horizontal bars, a line chart and heat-map colours.

const NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes and children. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) el.append(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

/** An HTML element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v; else el.setAttribute(k, v);
  }
  for (const c of children) if (c != null) el.append(typeof c === 'object' ? c : String(c));
  return el;
}

export const fmt = new Intl.NumberFormat('en-US');
export const pct = (x, digits = 1) => `${(x * 100).toFixed(digits)} %`;

/**
 * Horizontal bars: rows of {label, value, text}; `value` may be negative (drawn left of
 * the axis). Each bar group carries data-label and data-value for tests and tools.
 */
export function bars(rows, { title, width = 720, labelWidth = 180, textWidth = 150 } = {}) {
  const rowH = 26;
  const height = rows.length * rowH + 8;
  const plot = width - labelWidth - textWidth;
  const max = Math.max(1e-9, ...rows.map((r) => Math.abs(r.value)));
  const hasNeg = rows.some((r) => r.value < 0);
  const zero = labelWidth + (hasNeg ? plot / 2 : 0);
  const scale = (hasNeg ? plot / 2 : plot) / max;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title || 'bar chart' });
  rows.forEach((r, i) => {
    const y = 4 + i * rowH;
    const w = Math.max(1, Math.abs(r.value) * scale);
    const x = r.value < 0 ? zero - w : zero;
    const label = r.label.length > 26 ? `${r.label.slice(0, 25)}…` : r.label;
    root.append(svg('g', { class: 'bar-row', 'data-label': r.label, 'data-value': String(r.value) },
      svg('title', {}, `${r.label}: ${r.text}`),
      svg('text', { x: labelWidth - 6, y: y + 16, 'text-anchor': 'end' }, label),
      svg('rect', { class: r.value < 0 ? 'bar neg' : 'bar', x, y: y + 3, width: w, height: rowH - 8, rx: 2 }),
      svg('text', { x: width - textWidth + 6, y: y + 16 }, r.text)));
  });
  if (hasNeg) root.append(svg('line', { x1: zero, x2: zero, y1: 0, y2: height, stroke: '#888' }));
  return root;
}

/**
 * A line chart of series [{name, points: [{x, y}], dashed?}] with numeric x and y;
 * `xLabel`/`yLabel` format ticks.
 */
export function line(series, { title, width = 720, height = 300, xLabel = String, yLabel = String, yMin, xTicks } = {}) {
  const pad = { l: 70, r: 44, t: 12, b: 36 };
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x), ys = all.map((p) => p.y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [yMin ?? Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 = Math.max(0, y0 - 1); y1 += 1; }
  const X = (x) => pad.l + ((x - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title || 'line chart' });
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    root.append(svg('line', { x1: pad.l, x2: width - pad.r, y1: Y(yv), y2: Y(yv), stroke: '#e3e6ea' }),
      svg('text', { x: pad.l - 6, y: Y(yv) + 4, 'text-anchor': 'end', class: 'muted' }, yLabel(yv)));
    if (!xTicks) {
      const xv = x0 + ((x1 - x0) * i) / 4;
      root.append(svg('text', { x: X(xv), y: height - 12, 'text-anchor': 'middle', class: 'muted' }, xLabel(xv)));
    }
  }
  for (const xv of xTicks ? xTicks(x0, x1) : []) {
    root.append(svg('text', { x: X(xv), y: height - 12, 'text-anchor': 'middle', class: 'muted' }, xLabel(xv)));
  }
  const colours = ['#1f5fbf', '#d0663a', '#2e8b57', '#7a4bc2'];
  series.forEach((s, i) => {
    const colour = s.colour || colours[i % colours.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${X(p.x).toFixed(1)},${Y(p.y).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, fill: 'none', stroke: colour, 'stroke-width': 2, 'stroke-dasharray': s.dashed ? '5 4' : 'none' }));
    for (const p of s.points.length <= 60 ? s.points : []) {
      root.append(svg('circle', { cx: X(p.x), cy: Y(p.y), r: 3, fill: colour },
        svg('title', {}, `${s.name}: ${xLabel(p.x)} → ${yLabel(p.y)}`)));
    }
    const legend = svg('text', { x: pad.l + 8 + i * 170, y: pad.t + 12 }, `● ${s.name}`);
    legend.style.fill = colour; // a style, as the stylesheet's text fill beats an attribute
    root.append(legend);
  });
  return root;
}

/** A heat-map background for a share 0–1 (white to blue), with a readable text colour. */
export function heat(share) {
  const s = Math.max(0, Math.min(1, share));
  const l = 97 - s * 55;
  return { background: `hsl(214 70% ${l}%)`, color: l < 60 ? '#fff' : '#1b1f24' };
}
