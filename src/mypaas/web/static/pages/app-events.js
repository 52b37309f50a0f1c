// An app's events: the monitor's event log (GET /events?app=NAME, what `mypaas events` reads), newest
// first, each kind with a badge, refreshed every 5 s; a kind filter.
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Time } from "../ui.js";
import { api, enc } from "../api.js";

const LIMIT = 200;
const BAD = /abandoned|failed|oom|blocked|down|unreachable|refused|crash/;
const GOOD = /activated|ready|_up$|back$|relieved|added/;
const BUSY = /restarted|replaced|pressure|autoscale/;

function tone(kind) {
  return BAD.test(kind) ? "bad" : GOOD.test(kind) ? "good" : BUSY.test(kind) ? "busy" : "quiet";
}

export function KindBadge({ kind }) {
  return html`<span class=${`badge ${tone(kind)}`}>${kind.replaceAll("_", " ")}</span>`;
}

const COLUMNS = [
  { title: "When", cls: "when", render: (e) => html`<${Time} ts=${e.at} />` },
  { title: "Kind", render: (e) => html`<${KindBadge} kind=${e.kind} />` },
  { title: "What happened", cls: "what", key: "message" },
];

export default function EventsTab({ name }) {
  const events = useApi(() => api.get(`/events?app=${enc(name)}&limit=${LIMIT}`), [name], { every: 5000 });
  const [kind, setKind] = useState("");
  if (events.loading && !events.data) return html`<${Spinner} />`;
  const all = (events.data || []).slice().reverse();
  const kinds = [...new Set(all.map((e) => e.kind))].sort();
  const shown = kind ? all.filter((e) => e.kind === kind) : all;
  return html`<div class="events">
    <div class="row events-head">
      <label>Kind<select value=${kind} onChange=${(e) => setKind(e.target.value)}>
        <option value="">all kinds</option>${kinds.map((k) => html`<option value=${k}>${k.replaceAll("_", " ")}</option>`)}
      </select></label>
      <p class="muted small">Newest first · the last ${LIMIT} · refreshed every 5 s · <code>mypaas events ${name}</code></p>
    </div>
    <${ErrorLine} error=${events.error} />
    <${Table} label="Events" columns=${COLUMNS} rows=${shown} keyOf=${(e) => e.id}
      empty=${html`<${Empty} title="No events yet">Deploys, restarts, replaced instances and abandoned rollouts of ${name} show up here as they happen.<//>`} />
  </div>`;
}
