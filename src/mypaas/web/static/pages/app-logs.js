// An app's logs: the same GET /apps/NAME/logs stream `mypaas logs -f` reads, per service (the API's
// filter) and per instance (each line starts with its instance's name), searched and highlighted here.
// Only the newest KEEP lines are kept; the view follows the end until the user scrolls up.
import { html, useApi, useEffect, useRef, useState, ErrorLine, Empty, Button } from "../ui.js";
import { api, enc } from "../api.js";

const KEEP = 5000;
const TAILS = [100, 500, 2000];
const FLUSH_MS = 150; // lines arriving together are shown together

// "name | text" → { inst, text }
function parse(line, id) {
  const at = line.indexOf(" | ");
  return at > 0 && !line.slice(0, at).includes(" ") ? { id, inst: line.slice(0, at), text: line.slice(at + 3) } : { id, inst: "", text: line };
}

// Reads the stream into `lines` (batched), restarting when what is asked changes.
function useLogStream(name, service, tail, follow) {
  const [lines, setLines] = useState([]);
  const [state, setState] = useState({ running: false, error: null });
  useEffect(() => {
    const abort = new AbortController();
    let pending = [];
    let seq = 0;
    let timer = null;
    const flush = () => {
      timer = null;
      const batch = pending;
      pending = [];
      setLines((old) => {
        const all = old.concat(batch);
        return all.length > KEEP ? all.slice(all.length - KEEP) : all;
      });
    };
    setLines([]);
    setState({ running: true, error: null });
    const q = new URLSearchParams({ tail: String(tail), follow: String(follow) });
    if (service) q.set("service", service);
    api
      .stream(`/apps/${enc(name)}/logs?${q}`, (line) => {
        pending.push(parse(line, seq++));
        if (pending.length > KEEP) pending = pending.slice(pending.length - KEEP);
        if (!timer) timer = setTimeout(flush, FLUSH_MS);
      }, { signal: abort.signal })
      .then(
        () => setState({ running: false, error: null }),
        (error) => abort.signal.aborted || setState({ running: false, error }),
      )
      .finally(() => abort.signal.aborted || flush());
    return () => {
      abort.abort();
      if (timer) clearTimeout(timer);
    };
  }, [name, service, tail, follow]);
  return { lines, ...state };
}

function Highlight({ text, term }) {
  if (!term) return text;
  const out = [];
  const low = text.toLowerCase();
  let from = 0;
  for (let at = low.indexOf(term); at >= 0; at = low.indexOf(term, from)) {
    out.push(text.slice(from, at), html`<mark>${text.slice(at, at + term.length)}</mark>`);
    from = at + term.length;
  }
  out.push(text.slice(from));
  return out;
}

// Keeps the view at the newest line while `stick` (the user has not scrolled up).
function useStickToEnd(deps) {
  const box = useRef(null);
  const [stick, setStick] = useState(true);
  useEffect(() => {
    if (stick && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [...deps, stick]);
  const onScroll = () => {
    const el = box.current;
    const atEnd = el.scrollTop + el.clientHeight >= el.scrollHeight - 24;
    if (atEnd !== stick) setStick(atEnd);
  };
  return { box, stick, onScroll, toEnd: () => setStick(true) };
}

function Controls({ app, instances, ask, set }) {
  const services = Object.keys(app.services || {});
  const names = (instances || []).filter((i) => !ask.service || i.service === ask.service).map((i) => i.name);
  return html`<form class="log-controls" onSubmit=${(e) => e.preventDefault()}>
    <label>Service<select value=${ask.service} onChange=${(e) => set({ service: e.target.value, instance: "" })}>
      <option value="">all services</option>${services.map((s) => html`<option value=${s}>${s}</option>`)}
    </select></label>
    <label>Instance<select value=${ask.instance} onChange=${(e) => set({ instance: e.target.value })}>
      <option value="">all instances</option>${names.map((n) => html`<option value=${n}>${n}</option>`)}
    </select></label>
    <label>Last<select value=${ask.tail} onChange=${(e) => set({ tail: Number(e.target.value) })}>
      ${TAILS.map((t) => html`<option value=${t}>${t} lines</option>`)}
    </select></label>
    <label class="grow">Search<input type="search" value=${ask.search} placeholder="filter lines" onInput=${(e) => set({ search: e.target.value })} /></label>
    <label class="check"><input type="checkbox" checked=${ask.follow} onChange=${(e) => set({ follow: e.target.checked })} /> Follow</label>
  </form>`;
}

export default function LogsTab({ app, name }) {
  const [ask, setAsk] = useState({ service: "", instance: "", tail: 100, search: "", follow: true });
  const set = (change) => setAsk((a) => ({ ...a, ...change }));
  const instances = useApi(() => api.get(`/apps/${enc(name)}/instances`), [name], { every: 15000 });
  const stream = useLogStream(name, ask.service, ask.tail, ask.follow);
  const term = ask.search.trim().toLowerCase();
  const shown = stream.lines.filter((l) => (!ask.instance || l.inst === ask.instance) && (!term || l.text.toLowerCase().includes(term)));
  const view = useStickToEnd([shown.length, stream.lines]);
  const status = stream.running ? (ask.follow ? "following" : "reading") : "end of log";
  return html`<div class="logs">
    <${Controls} app=${app} instances=${instances.data} ask=${ask} set=${set} />
    <${ErrorLine} error=${stream.error} />
    <p class="muted small log-status" aria-live="polite">
      ${shown.length} of ${stream.lines.length} lines${term ? ` matching “${ask.search.trim()}”` : ""} · ${status}
      ${!view.stick && html` · <${Button} kind="small" onClick=${view.toEnd}>Jump to newest<//>`}
    </p>
    ${shown.length === 0
      ? html`<${Empty} title=${stream.lines.length ? "No line matches" : stream.running && ask.follow ? "Waiting for log lines…" : "No log lines yet"}>${stream.lines.length
          ? "Clear the search or pick another instance."
          : html`Lines the app writes to stdout and stderr show up here${ask.follow ? " as they come" : html`; turn on <em>Follow</em> to wait for new ones`}.`}<//>`
      : html`<div class="log-view" role="log" tabindex="0" aria-label="Log lines" ref=${view.box} onScroll=${view.onScroll}>
          ${shown.map((l) => html`<div class="log-line" key=${l.id}>${l.inst && !ask.instance && html`<span class="log-inst">${l.inst}</span>`}<${Highlight} text=${l.text} term=${term} /></div>`)}
        </div>`}
  </div>`;
}
