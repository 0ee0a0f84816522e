// Small statistics helpers.
export function median(values) {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Nearest-rank percentile of an ascending-sorted array, p in [0, 100].
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function summarize(values) {
  const s = Float64Array.from(values).sort();
  return {
    count: s.length,
    p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99),
    max: s.length ? s[s.length - 1] : NaN,
  };
}

// The percentile curve for a chart: [[percentile, value], ...].
export function curve(values) {
  const s = Float64Array.from(values).sort();
  const points = [];
  const ps = [];
  for (let p = 0; p <= 90; p += 1) ps.push(p);
  for (let p = 90.5; p <= 99; p += 0.5) ps.push(p);
  ps.push(99.5, 99.9, 100);
  for (const p of ps) points.push([p, percentile(s, Math.max(p, 0.0001))]);
  return points;
}

export const round = (x, digits = 2) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);
