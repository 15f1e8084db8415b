// Small time-series charts as SVG, with no library: a line per series, its name written at its end (so
// no colour is needed to tell series apart), the range as text, and a text alternative for screen
// readers. Gaps (null values) break the line.

const NS = "http://www.w3.org/2000/svg";

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * Draws `series` into a new <svg> and returns it.
 * @param {Array<{name: string, points: Array<[number, number | null]>}>} series  points are [time ms, value]
 * @param {{width?: number, height?: number, label: string, format?: (v: number) => string,
 *          span?: number, threshold?: number}} options  span: the time window shown, in ms
 */
export function timeChart(series, options) {
  const width = options.width ?? 260;
  const height = options.height ?? 64;
  const format = options.format ?? ((v) => String(Math.round(v)));
  // Room on the right for the series' names when there are several (about 5.5 px a character at 9 px).
  const longest = Math.max(0, ...series.map((s) => s.name.length + 5));
  const pad = { left: 4, right: series.length > 1 ? 8 + longest * 5.5 : 6, top: 12, bottom: 4 };
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "chart" });
  const all = series.flatMap((s) => s.points).filter(([, v]) => v !== null && Number.isFinite(v));
  const times = series.flatMap((s) => s.points.map(([t]) => t));
  const now = times.length ? Math.max(...times) : Date.now();
  const start = options.span ? now - options.span : times.length ? Math.min(...times) : now;
  const values = all.map(([, v]) => v);
  // The alarm's threshold is drawn only once the data comes near it: a line far above would flatten them.
  const nearThreshold = options.threshold !== undefined && options.threshold > 0 && Math.max(0, ...values) >= options.threshold / 2;
  if (nearThreshold) values.push(options.threshold);
  const low = Math.min(0, ...values);
  const high = Math.max(1, ...values);
  const x = (t) => pad.left + ((t - start) / Math.max(1, now - start)) * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - ((v - low) / (high - low)) * (height - pad.top - pad.bottom);

  svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: y(low), y2: y(low), class: "axis" }));
  svg.append(el("text", { x: pad.left, y: 9, class: "range" }, `max ${format(high)}`));
  if (nearThreshold) {
    const ty = y(options.threshold);
    svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: ty, y2: ty, class: "threshold" }));
    svg.append(el("text", { x: width - pad.right, y: ty - 2, "text-anchor": "end", class: "range" }, "alarm"));
  }
  const described = [];
  series.forEach((s, i) => {
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v) || t < start) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    svg.append(el("path", { d, class: `line line-${i % 4}`, "data-series": s.name }));
    const last = [...s.points].reverse().find(([, v]) => v !== null && Number.isFinite(v));
    if (last) {
      svg.append(el("circle", { cx: x(last[0]), cy: y(last[1]), r: 2.5, class: `dot line-${i % 4}` }));
      if (series.length > 1) {
        svg.append(el("text", { x: x(last[0]) + 5, y: y(last[1]) + 3, class: "name" }, `${s.name} ${format(last[1])}`));
      }
      described.push(`${s.name} now ${format(last[1])}`);
    }
  });
  const shown = all.length
    ? `${options.label}: ${described.join(", ")}; between ${format(Math.min(...all.map(([, v]) => v)))} and ${format(Math.max(...all.map(([, v]) => v)))} over ${Math.round((now - start) / 1000)} s`
    : `${options.label}: no data yet`;
  svg.setAttribute("aria-label", shown);
  svg.prepend(el("title", {}, shown));
  return svg;
}
