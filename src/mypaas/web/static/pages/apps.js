// The apps the signed-in user sees: state, ready instances, release, live.
import { html, useApi, Table, Empty, ErrorLine, Spinner, Badge, Time, can } from "../ui.js";
import { api, enc } from "../api.js";

const COLUMNS = [
  { title: "App", render: (a) => html`<a href=${`#/apps/${enc(a.name)}`}><strong>${a.name}</strong></a>` },
  { title: "Team", key: "team" },
  { title: "State", render: (a) => html`<${Badge} state=${a.state} />` },
  { title: "Ready", cls: "num", render: (a) => `${a.ready}/${a.instances}` },
  { title: "Release", cls: "num", render: (a) => (a.release ? `v${a.release}` : "—") },
  { title: "Updated", render: (a) => html`<${Time} ts=${a.updated_at} />` },
];

export default function AppsPage({ me }) {
  const apps = useApi(() => api.get("/apps"), [], { every: 5000 });
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
