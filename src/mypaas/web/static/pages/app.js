// One app's page (#/apps/NAME and #/apps/NAME/TAB): its header (team, state, release, URL and the
// lifecycle actions the caller's role allows) and one tab, each tab a module pages/app-TAB.js that is
// loaded when first opened and gets ({ app, name, me, reload }).
import { html, useApi, useEffect, useState, Spinner, ErrorLine, Empty, Badge, Tabs, Action, Confirm, can } from "../ui.js";
import { api, enc } from "../api.js";
import { Operation } from "./appkit.js";

const TABS = [
  ["overview", "Overview"],
  ["releases", "Releases"],
  ["config", "Config"],
  ["domains", "Domains"],
  ["scale", "Scale"],
  ["logs", "Logs"],
  ["events", "Events"],
  ["metrics", "Metrics"],
];
const KNOWN = new Set(TABS.map(([id]) => id));

function Release({ app }) {
  if (!app.release && !app.target_release) return html`<span class="muted">nothing deployed</span>`;
  if (app.target_release && app.target_release !== app.release) {
    return html`<span>v${app.release || "—"} <span class="muted">→ v${app.target_release}</span></span>`;
  }
  return html`<span>v${app.release}</span>`;
}

function Lifecycle({ app, me, onStarted }) {
  if (!can(me, "restart", app)) return null;
  const run = (what) => () => api.post(`/apps/${enc(app.name)}/${what}`);
  const stopped = app.state === "stopped";
  return html`<div class="actions app-actions">
    ${stopped
      ? html`<${Action} kind="primary" label="Start" action=${run("start")} onDone=${onStarted} />`
      : html`<${Action} label="Stop" action=${run("stop")} onDone=${onStarted} />`}
    ${!stopped && html`<${Action} label="Restart" action=${run("restart")} onDone=${onStarted} />`}
    ${can(me, "remove", app) &&
    html`<${Confirm} name=${app.name} label="Remove app" action=${() => api.del(`/apps/${enc(app.name)}`)}
      onDone=${() => (location.hash = "#/apps")} />`}
  </div>`;
}

function Header({ app, me, onStarted }) {
  return html`<div class="app-head">
    <div class="page-head">
      <h1>${app.name} <${Badge} state=${app.state} /></h1>
      <${Lifecycle} app=${app} me=${me} onStarted=${onStarted} />
    </div>
    <dl class="app-facts">
      <div><dt>Team</dt><dd>${app.team || "—"}</dd></div>
      <div><dt>Release</dt><dd><${Release} app=${app} /></dd></div>
      <div><dt>URL</dt><dd>${app.url ? html`<a href=${app.url} target="_blank" rel="noopener">${app.url}</a>` : "—"}</dd></div>
      ${app.blocked && html`<div><dt>Removal waits on</dt><dd class="error inline">${app.blocked}</dd></div>`}
    </dl>
  </div>`;
}

// The tab's module, loaded once per tab; a tab whose module is not there says so in one line.
function useTab(tab) {
  const [loaded, setLoaded] = useState({ tab: null, Component: null, error: null });
  useEffect(() => {
    let alive = true;
    setLoaded({ tab: null, Component: null, error: null });
    import(`./app-${tab}.js`).then(
      (m) => alive && setLoaded({ tab, Component: m.default, error: null }),
      (error) => alive && setLoaded({ tab, Component: null, error }),
    );
    return () => {
      alive = false;
    };
  }, [tab]);
  return loaded.tab === tab ? loaded : { tab: null, Component: null, error: null };
}

function TabBody({ tab, app, name, me, reload, started }) {
  const { Component, error } = useTab(tab);
  if (error) return html`<p class="muted not-available">The ${tab} tab is not available in this version of the dashboard.</p>`;
  if (!Component) return html`<${Spinner} />`;
  return html`<${Component} app=${app} name=${name} me=${me} reload=${reload} started=${started} />`;
}

export default function AppPage({ params, me }) {
  const name = params.name;
  const tab = params.tab || "overview";
  const app = useApi(() => api.get(`/apps/${enc(name)}`), [name], { every: 5000 });
  const [started, setStarted] = useState(null); // the operation a stop/start/restart here started
  const onStarted = (op) => {
    if (op && op.id) setStarted(op.id);
    app.reload();
  };
  if (!KNOWN.has(tab)) {
    return html`<section><h1>${name}</h1><p>No tab <code>${tab}</code>. <a href=${`#/apps/${enc(name)}`}>Open the app's overview</a>.</p></section>`;
  }
  if (app.error && app.error.status === 404) {
    return html`<section><${Empty} title=${`No app ${name}`}>It may have been removed, or it belongs to a team you are not in. <a href="#/apps">Back to the apps</a>.<//></section>`;
  }
  if (!app.data) return app.error ? html`<${ErrorLine} error=${app.error} />` : html`<${Spinner} />`;
  return html`<section class="app-page">
    <p class="crumbs"><a href="#/apps">Apps</a> / ${name}</p>
    <${Header} app=${app.data} me=${me} onStarted=${onStarted} />
    <${ErrorLine} error=${app.error} />
    ${started && html`<${Operation} key=${started} id=${started} title="Your last action" onFinished=${app.reload} />`}
    <${Tabs} tabs=${TABS} current=${tab} hrefOf=${(id) => `#/apps/${enc(name)}/${id}`} />
    <${TabBody} tab=${tab} app=${app.data} name=${name} me=${me} reload=${app.reload} started=${started} />
  </section>`;
}
