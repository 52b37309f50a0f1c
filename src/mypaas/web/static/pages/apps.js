// The apps the signed-in user sees: state, ready/desired instances, release, URL and the router's live
// requests/s and error % (one GET /metrics/now for all apps), refreshed every 5 s.
import { html, useApi, Table, Empty, ErrorLine, Spinner, Badge, Time, can } from "../ui.js";
import { api, enc } from "../api.js";

function rate(r) {
  if (!r) return html`<span class="muted">—</span>`;
  return r.rps >= 10 ? Math.round(r.rps) : r.rps.toFixed(r.rps >= 1 ? 1 : 2);
}

function errors(r) {
  if (!r || r.error_pct == null) return html`<span class="muted">—</span>`;
  const pct = r.error_pct >= 10 ? Math.round(r.error_pct) : r.error_pct.toFixed(1);
  return html`<span class=${r.error_pct >= 5 ? "bad-text" : ""}>${pct}%</span>`;
}

function ready(a) {
  const want = a.desired ?? a.instances;
  const short = a.state === "running" && a.ready < want;
  return html`<span class=${short ? "busy-text" : ""} title="ready / desired instances">${a.ready}/${want}</span>`;
}

const COLUMNS = [
  { title: "App", render: (a) => html`<a href=${`#/apps/${enc(a.name)}`}><strong>${a.name}</strong></a>` },
  { title: "Team", key: "team" },
  { title: "State", render: (a) => html`<${Badge} state=${a.state} />` },
  { title: "Ready", cls: "num", render: ready },
  { title: "Release", cls: "num", render: (a) => (a.release ? `v${a.release}` : "—") },
  { title: "Req/s", cls: "num", render: (a) => rate(a.live) },
  { title: "Errors", cls: "num", render: (a) => errors(a.live) },
  { title: "URL", cls: "url", render: (a) => (a.url ? html`<a href=${a.url} target="_blank" rel="noopener">${a.url.replace(/^https?:\/\//, "")}</a>` : "—") },
  { title: "Updated", render: (a) => html`<${Time} ts=${a.updated_at} />` },
];

// The list and the live figures in two calls, whatever the number of apps; no figures is not an error.
async function load() {
  const [apps, now] = await Promise.all([api.get("/apps"), api.get("/metrics/now").catch(() => null)]);
  const live = (now && now.requests) || {};
  return apps.map((a) => ({ ...a, live: live[a.name] || null }));
}

export default function AppsPage({ me }) {
  const apps = useApi(load, [], { every: 5000 });
  const deployer = can(me, "deploy", null);
  return html`<section>
    <div class="page-head"><h1>Apps</h1>${deployer && html`<a class="btn primary" href="#/deploy">Deploy an app</a>`}</div>
    <${ErrorLine} error=${apps.error} />
    ${apps.loading && !apps.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Apps" columns=${COLUMNS} rows=${apps.data} keyOf=${(a) => a.name}
          empty=${html`<${Empty} title="No apps yet">${deployer
            ? html`<a href="#/deploy">Deploy one from an image or a compose file</a>, or run <code>mypaas deploy APP IMAGE</code>.`
            : html`Apps your teams deploy show up here.`}<//>`} />`}
  </section>`;
}
