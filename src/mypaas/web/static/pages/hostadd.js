// Adding a host (`mypaas host add`): POST /api/v1/hosts with its SSH address and private key. A host seen
// for the first time answers 409 with its key's fingerprint: the form shows it, and once accepted sends
// the same request again with host_key (the CLI's --host-key). Then the host operation is followed.
import { html, useEffect, useRef, useState, Button, ErrorLine, Badge } from "../ui.js";
import { api, enc } from "../api.js";

// The request `mypaas host add` sends, from the form's fields.
export function hostBody(f) {
  const address = String(f.address || "").trim();
  const user = String(f.user || "").trim() || "root";
  const port = String(f.port || "").trim();
  const body = { url: `ssh://${user}@${address}${port && port !== "22" ? `:${port}` : ""}`, labels: {} };
  if (String(f.key || "").trim()) body.key = String(f.key).trim() + "\n";
  for (const pair of String(f.labels || "").split(/[,\s]+/).filter(Boolean)) {
    const at = pair.indexOf("=");
    body.labels[at < 0 ? pair : pair.slice(0, at)] = at < 0 ? "" : pair.slice(at + 1);
  }
  if (f.manager) body.manager = true;
  return body;
}

// An operation's log and status, followed by long polls until it finishes.
export function OpLog({ op: first, onDone }) {
  const [op, setOp] = useState(first);
  const [lines, setLines] = useState(first.log || []);
  const [error, setError] = useState(null);
  const gone = useRef(false);
  useEffect(() => {
    gone.current = false;
    (async () => {
      let cur = first;
      while (!gone.current && !["succeeded", "failed"].includes(cur.status)) {
        try {
          cur = await api.get(`/operations/${enc(cur.id)}?wait=20&log_offset=${cur.log_offset}`);
        } catch (e) {
          setError(e);
          return;
        }
        if (gone.current) return;
        const more = cur.log || [];
        if (more.length) setLines((l) => [...l, ...more]);
        setOp(cur);
      }
      if (!gone.current && onDone) onDone(cur);
    })();
    return () => {
      gone.current = true;
    };
  }, [first.id]);
  return html`<div class="oplog" data-op=${op.id}>
    <p><${Badge} state=${op.status} /> ${op.kind} ${op.message ? html`<span class="muted">— ${op.message}</span>` : ""}</p>
    ${lines.length > 0 && html`<pre class="log" aria-live="polite">${lines.map((l) => (typeof l === "string" ? l : JSON.stringify(l))).join("\n")}</pre>`}
    <${ErrorLine} error=${error} />
  </div>`;
}

function KeyField() {
  const area = useRef(null);
  const load = async (e) => {
    const file = e.target.files && e.target.files[0];
    if (file && area.current) area.current.value = await file.text();
  };
  return html`<label>Private key (PEM; kept by the manager to log in)
    <textarea ref=${area} name="key" rows="4" spellcheck="false" autocomplete="off"
      placeholder="-----BEGIN OPENSSH PRIVATE KEY-----"></textarea></label>
  <label class="file">…or read it from a file <input type="file" onChange=${load} /></label>`;
}

function Fingerprint({ body, fingerprint, onAccept, onCancel, busy }) {
  return html`<div class="fingerprint-step" role="alertdialog" aria-label="Check the host key">
    <p><strong>${body.url}</strong> is new: its SSH host key fingerprint is</p>
    <p><code class="fingerprint">${fingerprint}</code></p>
    <p class="muted small">Check it on the host (<code>ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub</code>) before you trust it.</p>
    <div class="actions">
      <${Button} kind="primary" busy=${busy} onClick=${onAccept}>Trust this key and add the host<//>
      <${Button} onClick=${onCancel}>Cancel<//>
    </div>
  </div>`;
}

export function AddHost({ onChanged }) {
  const [open, setOpen] = useState(false);
  const [pending, setPending] = useState(null); // {body, fingerprint}: waiting for the key to be accepted
  const [op, setOp] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const send = async (body) => {
    setBusy(true);
    setError(null);
    try {
      const started = await api.post("/hosts", body);
      setPending(null);
      setOp(started);
      onChanged();
    } catch (e) {
      if (e.status === 409 && e.body && e.body.fingerprint && !body.host_key) setPending({ body, fingerprint: e.body.fingerprint });
      else setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!open) return html`<${Button} kind="primary" onClick=${() => setOpen(true)}>Add a host<//>`;
  const close = () => {
    setOpen(false);
    setPending(null);
    setOp(null);
    setError(null);
  };
  return html`<div class="card add-host">
    <h2>Add a host</h2>
    ${op
      ? html`<${OpLog} op=${op} onDone=${onChanged} /><${Button} onClick=${close}>Close<//>`
      : pending
        ? html`<${Fingerprint} ...${pending} busy=${busy} onCancel=${() => setPending(null)}
            onAccept=${() => send({ ...pending.body, host_key: pending.fingerprint })} />`
        : html`<form onSubmit=${(e) => { e.preventDefault(); send(hostBody(Object.fromEntries(new FormData(e.target)))); }}>
            <p class="muted small">Docker is installed on it over SSH, then it joins the Swarm.</p>
            <div class="row">
              <label class="grow">SSH address<input name="address" required placeholder="10.0.0.12 or node1.example.com" /></label>
              <label>User<input name="user" value="root" size="8" /></label>
              <label>Port<input name="port" type="number" min="1" max="65535" value="22" size="5" /></label>
            </div>
            <${KeyField} />
            <div class="row">
              <label class="grow">Labels (key=value, comma separated)<input name="labels" placeholder="zone=a, disk=ssd" /></label>
              <label class="check"><input type="checkbox" name="manager" value="1" /> Swarm manager</label>
            </div>
            <div class="actions"><${Button} type="submit" kind="primary" busy=${busy}>Connect<//><${Button} onClick=${close}>Cancel<//></div>
          </form>`}
    <${ErrorLine} error=${error} />
  </div>`;
}
