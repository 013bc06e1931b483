// A small dependency-free SVG line chart: axes with ticks and grid, linear or logarithmic
// scales (log x for concurrency, log y for latencies that explode past saturation), markers,
// dashed series and a legend. Enough for the benchmark plots; not a charting library.

export interface Point {
  x: number;
  y: number;
}

export interface Series {
  name: string;
  points: Point[];
  /** Index into the palette; series sharing a colour differ by `dashed`. */
  color?: number;
  dashed?: boolean;
  /** No markers (reference lines). */
  plain?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  xScale?: 'linear' | 'log';
  yScale?: 'linear' | 'log';
  /** Tick positions on x (default: chosen from the range). */
  xTicks?: number[];
  /** Start the y axis at zero (linear scale only; default true). */
  yFromZero?: boolean;
  width?: number;
  height?: number;
  subtitle?: string;
}

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (n: number) => (Math.abs(n) >= 1000 ? n.toLocaleString('en-US', { maximumFractionDigits: 0 })
  : Number(n.toPrecision(3)).toString());

/** About `count` round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Ticks of a log axis: 1, 2, 5 × 10^k inside [lo, hi] (only powers of ten when that is many). */
export function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  const decades = Math.log10(hi / lo);
  const mantissas = decades > 4 ? [1] : decades > 2 ? [1, 3] : [1, 2, 5];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of mantissas) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(Number(v.toPrecision(6)));
    }
  }
  return ticks;
}

/** The largest 1, 2 or 5 × 10^k at or below v. */
const floorNice = (v: number) => {
  const e = 10 ** Math.floor(Math.log10(v));
  return [5, 2, 1].map((m) => m * e).find((c) => c <= v * 1.0001) ?? e;
};
/** The smallest 1, 2 or 5 × 10^k at or above v. */
const ceilNice = (v: number) => {
  const e = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * e).find((c) => c >= v * 0.9999) ?? 10 * e;
};

interface Axis {
  map(v: number): number;
  ticks: number[];
}

function axis(values: number[], scale: 'linear' | 'log', from: number, to: number, fixedTicks: number[] | undefined, fromZero: boolean): Axis {
  const finite = values.filter((v) => Number.isFinite(v) && (scale === 'linear' || v > 0));
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (fixedTicks?.length) {
    lo = Math.min(lo, ...fixedTicks);
    hi = Math.max(hi, ...fixedTicks);
  }
  if (scale === 'log') {
    if (!(lo > 0)) lo = 1;
    if (hi <= lo) hi = lo * 10;
    if (!fixedTicks) {
      lo = floorNice(lo);
      hi = ceilNice(hi);
    }
    const l0 = Math.log(lo);
    const l1 = Math.log(hi);
    return { map: (v) => from + ((Math.log(v) - l0) / (l1 - l0)) * (to - from), ticks: fixedTicks ?? logTicks(lo, hi) };
  }
  if (fromZero) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  if (fixedTicks) return { map: (v) => from + ((v - lo) / (hi - lo)) * (to - from), ticks: fixedTicks };
  // Extend the range to whole steps, so both ends carry a labelled tick.
  const rough = niceTicks(lo, hi);
  const step = rough.length > 1 ? (rough[1] as number) - (rough[0] as number) : Math.abs(hi - lo) || 1;
  lo = Math.floor(lo / step + 1e-9) * step;
  hi = Math.ceil(hi / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return { map: (v) => from + ((v - lo) / (hi - lo)) * (to - from), ticks };
}

/** Splits a ' · '-separated line into lines of at most about `max` characters. */
function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const part of text.split(' · ')) {
    if (line && line.length + 3 + part.length > max) {
      lines.push(line);
      line = part;
    } else {
      line = line ? `${line} · ${part}` : part;
    }
  }
  if (line) lines.push(line);
  return lines;
}

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 420;
  const legendWidth = 230;
  const subtitleLines = options.subtitle ? wrap(options.subtitle, Math.floor((width - 80) / 6.6)) : [];
  const margin = { top: 44 + 16 * subtitleLines.length, right: legendWidth + 16, bottom: 56, left: 72 };
  const plot = { x0: margin.left, x1: width - margin.right, y0: height - margin.bottom, y1: margin.top };
  const all = options.series.flatMap((s) => s.points);
  const xScale = options.xScale ?? 'linear';
  const yScale = options.yScale ?? 'linear';
  const x = axis(all.map((p) => p.x), xScale, plot.x0, plot.x1, options.xTicks, false);
  const y = axis(all.map((p) => p.y), yScale, plot.y0, plot.y1, undefined, options.yFromZero ?? true);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${plot.x0}" y="22" font-size="15" font-weight="bold">${escape(options.title)}</text>`);
  subtitleLines.forEach((line, i) => out.push(`<text x="${plot.x0}" y="${40 + 16 * i}" fill="#555">${escape(line)}</text>`));

  // Grid, ticks and tick labels.
  for (const t of y.ticks) {
    const py = y.map(t).toFixed(1);
    out.push(`<line x1="${plot.x0}" x2="${plot.x1}" y1="${py}" y2="${py}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${plot.x0 - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${fmt(t)}</text>`);
  }
  for (const t of x.ticks) {
    const px = x.map(t).toFixed(1);
    out.push(`<line x1="${px}" x2="${px}" y1="${plot.y0}" y2="${plot.y1}" stroke="#f0f0f0"/>`);
    out.push(`<line x1="${px}" x2="${px}" y1="${plot.y0}" y2="${plot.y0 + 5}" stroke="#333"/>`);
    out.push(`<text x="${px}" y="${plot.y0 + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<path d="M${plot.x0},${plot.y1}V${plot.y0}H${plot.x1}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${(plot.x0 + plot.x1) / 2}" y="${height - 14}" text-anchor="middle">${escape(options.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${(plot.y0 + plot.y1) / 2}) rotate(-90)" text-anchor="middle">${escape(options.yLabel)}</text>`);

  // Series: a polyline per run of finite points, markers on each point.
  const usable = (p: Point) => Number.isFinite(p.x) && Number.isFinite(p.y) && (xScale === 'linear' || p.x > 0) && (yScale === 'linear' || p.y > 0);
  options.series.forEach((s, i) => {
    const color = PALETTE[(s.color ?? i) % PALETTE.length] as string;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) out.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      run = [];
    };
    for (const p of [...s.points].sort((a, b) => a.x - b.x)) {
      if (!usable(p)) {
        flush();
        continue;
      }
      const px = x.map(p.x).toFixed(1);
      const py = y.map(p.y).toFixed(1);
      run.push(`${px},${py}`);
      if (!s.plain) out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${s.dashed ? '#fff' : color}" stroke="${color}" stroke-width="1.5"><title>${escape(`${s.name}: ${fmt(p.x)}, ${fmt(p.y)}`)}</title></circle>`);
    }
    flush();
    // Legend entry.
    const ly = plot.y1 + 8 + i * 20;
    const lx = plot.x1 + 18;
    out.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 32}" y="${ly}" dominant-baseline="middle">${escape(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
