// An app's charts: CPU, memory, network, requests/s, error % and p95 latency over 1 h / 24 h / 7 d from
// the monitor's series (GET /apps/NAME/metrics, what `mypaas metrics` reads; `step` keeps 24 h and 7 d
// to a few hundred points). uPlot draws them, in the colours of the page's light or dark scheme.
import uPlot from "uplot";
import { html, useApi, useEffect, useRef, useState, Empty, ErrorLine, Spinner, bytes } from "../ui.js";
import { api, enc } from "../api.js";

const RANGES = [
  // [id, label, query, refresh every ms]
  ["1h", "1 hour", "since=1h", 15000],
  ["24h", "24 hours", "since=24h&step=300", 60000],
  ["7d", "7 days", "since=7d&step=3600", 300000],
];
const HEIGHT = 170;

function loadCss() {
  const href = new URL("../vendor/uplot/uPlot.min.css", import.meta.url).href;
  if (document.querySelector(`link[href="${href}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  document.head.appendChild(link);
}

// The page's colours (CSS variables), read again when the system switches light/dark.
function readTheme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return { text: v("--muted"), grid: v("--line"), palette: [v("--accent"), v("--busy"), v("--good"), v("--bad"), v("--quiet")] };
}

function useTheme() {
  const [theme, setTheme] = useState(readTheme);
  useEffect(() => {
    const mq = matchMedia("(prefers-color-scheme: dark)");
    const on = () => setTheme(readTheme());
    mq.addEventListener("change", on);
    return () => mq.removeEventListener("change", on);
  }, []);
  return theme;
}

const num = (n, unit = "") => (n == null ? "—" : `${n >= 100 ? Math.round(n) : n >= 10 ? n.toFixed(1) : n.toFixed(2)}${unit}`);
const FORMATS = {
  pct: (n) => num(n, " %"),
  bytes: (n) => bytes(n),
  rate: (n) => (n == null ? "—" : n < 1024 ? num(n, " B/s") : `${bytes(n)}/s`),
  rps: (n) => num(n, "/s"),
  ms: (n) => num(n, " ms"),
};

function lastOf(values) {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] != null) return values[i];
  return null;
}

// One chart sized to its container: lines = [{label, values}] over xs (seconds), its x axis the whole
// range asked for (the last `span` seconds), however few points there are yet.
function Chart({ title, xs, lines, format, theme, span }) {
  const box = useRef(null);
  const plot = useRef(null);
  const spanNow = useRef(span);
  spanNow.current = span;
  const fmt = FORMATS[format];
  const shape = `${lines.map((l) => l.label).join("|")}`;
  useEffect(() => {
    const el = box.current;
    const axis = { stroke: theme.text, grid: { stroke: theme.grid, width: 1 }, ticks: { stroke: theme.grid, width: 1 } };
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { live: true },
      cursor: { points: { size: 6 } },
      scales: { x: { time: true, range: () => [Date.now() / 1000 - spanNow.current, Date.now() / 1000] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      axes: [{ ...axis }, { ...axis, size: 70, values: (u, ticks) => ticks.map(fmt) }],
      series: [{}, ...lines.map((l, i) => ({ label: l.label, stroke: theme.palette[i % theme.palette.length], width: 1.5, value: (u, v) => fmt(v), spanGaps: false }))],
    };
    const u = new uPlot(opts, [xs, ...lines.map((l) => l.values)], el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
  }, [shape, theme, format]);
  useEffect(() => {
    if (plot.current) plot.current.setData([xs, ...lines.map((l) => l.values)]);
  }, [xs, lines]);
  const now = lines.map((l) => `${l.label} ${fmt(lastOf(l.values))}`).join(", ");
  return html`<figure class="chart card" aria-label=${`${title}: ${now}`}>
    <figcaption><strong>${title}</strong> <span class="muted small">${fmt(lastOf(lines[0].values))} now</span></figcaption>
    <div class="chart-plot" ref=${box}></div>
  </figure>`;
}

// The API's points as chart lines: per service when there are several, else the app's total.
function gaugeLines(data, key, total = "total") {
  const xs = data.total.map((p) => p.at);
  const names = Object.keys(data.services);
  const lines = [{ label: total, values: data.total.map((p) => p[key]) }];
  if (names.length > 1) {
    for (const svc of names) {
      const by = new Map(data.services[svc].map((p) => [p.at, p[key]]));
      lines.push({ label: svc, values: xs.map((x) => (by.has(x) ? by.get(x) : null)) });
    }
  }
  return { xs, lines };
}

function charts(data) {
  const out = [];
  if (data.total.length) {
    const xs = data.total.map((p) => p.at);
    out.push({ title: "CPU", format: "pct", ...gaugeLines(data, "cpu_pct") });
    out.push({ title: "Memory", format: "bytes", ...gaugeLines(data, "mem_bytes") });
    out.push({
      title: "Network",
      format: "rate",
      xs,
      lines: [
        { label: "in", values: data.total.map((p) => p.rx_rate) },
        { label: "out", values: data.total.map((p) => p.tx_rate) },
      ],
    });
  }
  if (data.requests.length) {
    const xs = data.requests.map((p) => p.at);
    const col = (k) => data.requests.map((p) => p[k]);
    out.push({ title: "Requests", format: "rps", xs, lines: [{ label: "requests/s", values: col("rps") }] });
    out.push({ title: "Errors", format: "pct", xs, lines: [{ label: "error %", values: col("error_pct") }] });
    out.push({ title: "Latency", format: "ms", xs, lines: [{ label: "p95", values: col("latency_p95_ms") }, { label: "mean", values: col("latency_ms") }] });
  }
  return out;
}

function RangePicker({ range, setRange }) {
  return html`<div class="range" role="group" aria-label="Time range">
    ${RANGES.map(([id, label]) => html`<button type="button" class="btn small" aria-pressed=${range === id ? "true" : "false"} onClick=${() => setRange(id)}>${label}</button>`)}
  </div>`;
}

export default function MetricsTab({ name }) {
  const [range, setRange] = useState("1h");
  const [, , query, every] = RANGES.find((r) => r[0] === range);
  const theme = useTheme();
  const series = useApi(() => api.get(`/apps/${enc(name)}/metrics?${query}`), [name, query], { every });
  useEffect(loadCss, []);
  const list = series.data ? charts(series.data) : [];
  const res = series.data && series.data.resolution_s;
  return html`<div class="metrics">
    <div class="row metrics-head">
      <${RangePicker} range=${range} setRange=${setRange} />
      <p class="muted small">${res ? `one point per ${res >= 3600 ? `${res / 3600} h` : `${res / 60} min`}` : "every sample"} · <code>mypaas metrics ${name} --since ${range}</code></p>
    </div>
    <${ErrorLine} error=${series.error} />
    ${series.loading && !series.data
      ? html`<${Spinner} />`
      : list.length === 0
        ? html`<${Empty} title=${`No figures for the last ${RANGES.find((r) => r[0] === range)[1]} yet`}>The monitor samples the app's instances every few seconds and the router counts its requests: charts show up after the first sample (past the last hour, after the first minute is averaged). A stopped app has none.<//>`
        : html`<div class="charts">${list.map((c) => html`<${Chart} key=${c.title} ...${c} theme=${theme} span=${series.data.since_s} />`)}</div>`}
  </div>`;
}
