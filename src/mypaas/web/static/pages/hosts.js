// Hosts (`mypaas host …`, admin only): GET /hosts and /cluster, this machine's figures from /metrics/now;
// drain / activate / labels / remove per host; adding one is in hostadd.js.
import { html, useApi, useState, Table, Empty, ErrorLine, Spinner, Action, Badge, Confirm, Button, bytes, can } from "../ui.js";
import { api, enc } from "../api.js";
import { AddHost, OpLog } from "./hostadd.js";

const pct = (v) => (v == null ? "—" : `${Math.round(v)}%`);

function Labels({ host, onChanged }) {
  const [adding, setAdding] = useState(false);
  const [error, setError] = useState(null);
  const change = async (body) => {
    setError(null);
    try {
      await api.patch(`/hosts/${enc(host.name)}/labels`, body);
      setAdding(false);
      onChanged();
    } catch (e) {
      setError(e);
    }
  };
  const add = (e) => {
    e.preventDefault();
    const text = new FormData(e.target).get("label").trim();
    const at = text.indexOf("=");
    change({ set: { [at < 0 ? text : text.slice(0, at)]: at < 0 ? "" : text.slice(at + 1) } });
  };
  const entries = Object.entries(host.labels || {});
  return html`<div class="labels">
    ${entries.map(([k, v]) => html`<span class="chip">${k}${v ? `=${v}` : ""}<button class="chip-x" aria-label=${`remove label ${k}`} title="remove"
      onClick=${() => change({ remove: [k] })}>×</button></span>`)}
    ${adding
      ? html`<form class="label-add" onSubmit=${add}><input name="label" required placeholder="key=value" aria-label="new label" autofocus size="12" />
          <${Button} type="submit" kind="small">Set<//><${Button} kind="small" onClick=${() => setAdding(false)}>Cancel<//></form>`
      : html`<button class="link small" onClick=${() => setAdding(true)}>+ label</button>`}
    <${ErrorLine} error=${error} />
  </div>`;
}

function HostActions({ host, onChanged, onOp }) {
  if (host.driver === "local" || host.driver === "unmanaged") return html`<span class="muted small">${host.driver === "local" ? "this machine" : "joined by hand"}</span>`;
  const drained = host.availability === "drain" || /^drain/.test(host.state);
  const unreachable = /^(down|unreachable|missing)$/.test(host.state);
  return html`<div class="actions">
    ${drained
      ? html`<${Action} label="Activate" action=${() => api.post(`/hosts/${enc(host.name)}/activate`)} onDone=${onChanged} />`
      : html`<${Action} label="Drain" action=${() => api.post(`/hosts/${enc(host.name)}/drain`)} onDone=${onChanged} />`}
    <${Confirm} name=${host.name} label=${unreachable ? "Remove (force)" : "Remove"}
      action=${() => api.del(`/hosts/${enc(host.name)}${unreachable ? "?force=true" : ""}`)} onDone=${onOp} />
  </div>`;
}

function columns(usage, reload, onOp) {
  return [
    { title: "Host", render: (h) => html`<span><strong>${h.name}</strong>${h.leader ? html` <span class="badge quiet">leader</span>` : ""}${h.message ? html`<span class="muted small block">${h.message}</span>` : ""}</span>` },
    { title: "Address", render: (h) => html`<code>${h.user ? `${h.user}@` : ""}${h.address || "—"}${h.port && h.port !== 22 ? `:${h.port}` : ""}</code>` },
    { title: "State", render: (h) => html`<${Badge} state=${h.state} />` },
    { title: "Role", key: "role" },
    { title: "Labels", render: (h) => html`<${Labels} host=${h} onChanged=${reload} />` },
    { title: "CPU", cls: "num", render: (h) => (h.cpus ? `${h.cpus}` : "—") },
    { title: "Memory", cls: "num", render: (h) => html`<span>${bytes(h.memory_bytes)}${usage[h.name] ? html`<span class="muted small block">${pct(usage[h.name].mem_pct)} used</span>` : ""}</span>` },
    { title: "Disk", cls: "num", render: (h) => pct(usage[h.name] && usage[h.name].disk_pct) },
    { title: "Instances", cls: "num", key: "instances" },
    { title: "Driver", render: (h) => html`<span class="muted">${h.driver || "—"}</span>` },
    { title: "", render: (h) => html`<${HostActions} host=${h} onChanged=${reload} onOp=${onOp} />` },
  ];
}

// This machine's own figures (the sampler's "host" sample) and the cluster's mode.
function ThisMachine({ cluster, host }) {
  const c = cluster || {};
  return html`<div class="card machine">
    <h2>This machine</h2>
    <dl class="kv">
      <dt>Mode</dt><dd>${c.mode === "swarm" ? html`Swarm (${c.swarm}), ${c.ready}/${c.nodes} nodes ready, ${c.managers} manager${c.managers === 1 ? "" : "s"}` : html`one machine: apps run on this machine's Docker engine`}</dd>
      ${c.manager_addr && html`<dt>Manager address</dt><dd><code>${c.manager_addr}</code></dd>`}
      <dt>CPU</dt><dd>${host ? `${host.cpu_pct.toFixed(0)}% of one core` : "—"}</dd>
      <dt>Memory</dt><dd>${host ? `${bytes(host.mem_bytes)}${host.mem_limit ? ` of ${bytes(host.mem_limit)}` : ""}` : "—"}</dd>
    </dl>
    ${c.error && html`<${ErrorLine} error=${c.error} />`}
  </div>`;
}

export default function HostsPage({ me }) {
  const hosts = useApi(() => (can(me, "admin") ? api.get("/hosts") : null), [], { every: 5000 });
  const cluster = useApi(() => (can(me, "admin") ? api.get("/cluster") : null), [], { every: 15000 });
  const now = useApi(() => (can(me, "admin") ? api.get("/metrics/now") : null), [], { every: 5000 });
  const [op, setOp] = useState(null);
  if (!can(me, "admin")) {
    return html`<section><h1>Hosts</h1><p class="notice" role="note">Hosts are for platform admins only: ask an admin to add or drain a machine.</p></section>`;
  }
  const usage = Object.fromEntries(((now.data && now.data.hosts) || []).map((h) => [h.name, h]));
  const onOp = (started) => {
    setOp(started);
    hosts.reload();
  };
  return html`<section>
    <div class="page-head"><h1>Hosts</h1><${AddHost} onChanged=${hosts.reload} /></div>
    ${op && html`<div class="card"><h2>Removing a host</h2><${OpLog} key=${op.id} op=${op} onDone=${hosts.reload} /><${Button} onClick=${() => setOp(null)}>Close<//></div>`}
    <${ErrorLine} error=${hosts.error} />
    ${hosts.loading && !hosts.data
      ? html`<${Spinner} />`
      : html`<${Table} label="Hosts" columns=${columns(usage, hosts.reload, onOp)} rows=${hosts.data} keyOf=${(h) => h.name}
          empty=${html`<${Empty} title="No hosts beyond this machine">Add one with its SSH address and private key (the Add a host button, or <code>mypaas host add ssh://root@ADDRESS</code>): apps then spread over the machines.${
            cluster.data && cluster.data.mode !== "swarm" ? html`<br />This machine is not a Swarm manager yet: run <code>mypaas cluster init</code> on it first.` : ""}<//>`} />`}
    <${ThisMachine} cluster=${cluster.data} host=${now.data && now.data.host} />
  </section>`;
}
