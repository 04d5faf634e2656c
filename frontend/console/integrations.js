// The integrations page. Two lists a person acts on:
//  - inbound messages that need attention: why, the raw request, a form to correct the
//    fields named in the problems, and reprocess / dismiss (one or several at once);
//  - outbound webhook deliveries: the log per endpoint, dead letters, replay.
// Everything goes through the REST API (apps/integrations/api.py, outbound_api.py).

import { html, render, useCallback, useEffect, useState } from "preact-htm";

import { api, describeError } from "../common/api.js";

const config = JSON.parse(document.getElementById("integrations-config").textContent);
const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { timeZone: config.timezone }) : "–");

function ErrorLine({ error }) {
  return error ? html`<p class="alert alert-error" role="alert">${describeError(error)}</p>` : null;
}

// --- inbound ---------------------------------------------------------------------------

function ProblemField({ problem, value, onInput }) {
  const name = problem.field.split(".")[0];
  const editable = !name.startsWith("items") && !["body", "id", "shipping_address", "mapping"].includes(name);
  return html`<li class="problem">
    <label for=${`fix-${name}`}>${problem.field}</label>
    <div class=${`why ${problem.blocking ? "" : "is-warning"}`}>${problem.message}</div>
    ${editable && html`<input id=${`fix-${name}`} data-field=${name} value=${value ?? ""}
      placeholder="Corrected value" onInput=${(e) => onInput(name, e.target.value)} />`}
  </li>`;
}

function Message({ message, selected, onSelect, onChanged }) {
  const [open, setOpen] = useState(false);
  const [detail, setDetail] = useState(null);
  const [fixes, setFixes] = useState({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  useEffect(() => {
    if (open && !detail) api(`integrations/messages/${message.id}/`).then(setDetail, setError);
  }, [open]);

  const run = async (path, body) => {
    setBusy(true);
    setError(null);
    try {
      await api(`integrations/messages/${message.id}/${path}/`, { method: "POST", body });
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const overrides = Object.fromEntries(Object.entries(fixes).filter(([, v]) => v !== ""));
  const warning = message.status === "processed";
  let pretty = detail?.body ?? "";
  try { pretty = JSON.stringify(JSON.parse(pretty), null, 2); } catch { /* not JSON: shown as received */ }

  return html`<article class="msg" data-testid="attention-message" data-id=${message.id}>
    <div class="msg-head" onClick=${() => setOpen(!open)}>
      <input type="checkbox" aria-label="Select" checked=${selected}
        onClick=${(e) => e.stopPropagation()} onChange=${(e) => onSelect(message.id, e.target.checked)} />
      <div>
        <div class="msg-title">${message.connection_name} · ${message.topic || "(no topic)"}
          ${message.external_id && html` · order ${message.external_id}`}</div>
        <div class="msg-meta">#${message.id} received ${when(message.received_at)}
          ${message.attempts > 1 ? ` · ${message.attempts} attempts` : ""}</div>
        <div class=${`msg-reason ${warning ? "is-warning" : ""}`}>${message.reason}</div>
      </div>
      <span class=${`status status-${message.status}`}>${message.status.replace("_", " ")}</span>
    </div>
    ${open && html`<div class="msg-body">
      <div>
        <ul class="problems">
          ${message.problems.map((p) => html`<${ProblemField} problem=${p} value=${fixes[p.field.split(".")[0]]}
            onInput=${(name, v) => setFixes({ ...fixes, [name]: v })} />`)}
        </ul>
        <${ErrorLine} error=${error} />
        <div class="actions">
          ${Object.keys(overrides).length > 0 && html`<button class="btn btn-primary btn-small" disabled=${busy}
            onClick=${() => run("fix", { overrides })}>Save fix and reprocess</button>`}
          ${message.status === "needs_attention" && html`<button class="btn btn-small" disabled=${busy}
            onClick=${() => run("reprocess")}>Reprocess</button>`}
          <button class="btn btn-ghost btn-small" disabled=${busy} onClick=${() => run("dismiss")}>Dismiss</button>
          ${message.order && html`<span class="msg-meta">Order #${message.order}</span>`}
        </div>
      </div>
      <div>
        <div class="msg-meta">Raw request as received</div>
        <pre data-testid="raw-body">${detail ? pretty : "Loading…"}</pre>
      </div>
    </div>`}
  </article>`;
}

function Inbound({ onCount }) {
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [busy, setBusy] = useState(false);

  const load = useCallback(() => {
    api("integrations/messages/", { params: { attention: "true", page_size: 100 } })
      .then((body) => { setPage(body); onCount(body.results.length); }, setError);
  }, []);
  useEffect(load, []);

  const select = (id, on) => {
    const next = new Set(selected);
    if (on) next.add(id); else next.delete(id);
    setSelected(next);
  };
  const reprocessSelected = async () => {
    setBusy(true);
    try {
      await api("integrations/messages/reprocess/", { method: "POST", body: { ids: [...selected] } });
      setSelected(new Set());
      load();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (!page) return html`<${ErrorLine} error=${error} />${!error && html`<p class="panel-loading">Loading…</p>`}`;
  return html`<section aria-label="Needs attention">
    <div class="toolbar">
      <span class="msg-meta">Orders from stores and partners that could not be applied, or were applied with a warning.</span>
      <span class="spacer"></span>
      <button class="btn btn-small" disabled=${busy || selected.size === 0} onClick=${reprocessSelected}>
        Reprocess selected (${selected.size})</button>
    </div>
    <${ErrorLine} error=${error} />
    ${page.results.length === 0
      ? html`<p class="empty">Nothing needs attention.</p>`
      : page.results.map((m) => html`<${Message} key=${m.id} message=${m} selected=${selected.has(m.id)}
          onSelect=${select} onChanged=${load} />`)}
  </section>`;
}

// --- outbound --------------------------------------------------------------------------

function Delivery({ delivery, onChanged }) {
  const [open, setOpen] = useState(false);
  const [attempts, setAttempts] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (open && !attempts) api(`webhooks/deliveries/${delivery.id}/attempts/`).then(setAttempts, setError);
  }, [open]);
  const replay = async () => {
    try {
      await api(`webhooks/deliveries/${delivery.id}/replay/`, { method: "POST" });
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return html`<article class="msg" data-testid="delivery" data-id=${delivery.id}>
    <div class="msg-head" onClick=${() => setOpen(!open)}>
      <span></span>
      <div>
        <div class="msg-title">${delivery.event_type} → ${delivery.endpoint_url}</div>
        <div class="msg-meta">${delivery.webhook_id} · ${delivery.attempts} attempts · last
          ${delivery.last_status_code ?? delivery.last_error ?? "–"} · next ${when(delivery.next_attempt_at)}</div>
      </div>
      <span class=${`status status-${delivery.status}`}>${delivery.status}</span>
    </div>
    ${open && html`<div class="msg-body" style="grid-template-columns: 1fr">
      <${ErrorLine} error=${error} />
      <table class="attempts"><thead><tr><th>When</th><th>Response</th><th>Latency</th><th>Error</th></tr></thead>
        <tbody>${(attempts || []).map((a) => html`<tr><td>${when(a.attempted_at)}</td><td>${a.status_code ?? "–"}</td>
          <td>${a.latency_ms} ms</td><td>${a.error}</td></tr>`)}</tbody></table>
      ${config.canReplay && html`<div class="actions"><button class="btn btn-small" onClick=${replay}>Replay</button></div>`}
    </div>`}
  </article>`;
}

function Outbound() {
  const [status, setStatus] = useState("dead");
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const load = useCallback(() => {
    api("webhooks/deliveries/", { params: { status, page_size: 100 } }).then(setPage, setError);
  }, [status]);
  useEffect(load, [status]);
  const replayAll = async () => {
    try {
      await api("webhooks/deliveries/replay/", { method: "POST", body: { status: "dead" } });
      load();
    } catch (err) {
      setError(err);
    }
  };
  return html`<section aria-label="Webhook deliveries">
    <div class="toolbar">
      <select aria-label="Status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
        <option value="dead">Dead letters</option><option value="pending">Pending</option>
        <option value="succeeded">Delivered</option><option value="">All</option>
      </select>
      <span class="spacer"></span>
      ${config.canReplay && status === "dead" && html`<button class="btn btn-small" onClick=${replayAll}>Replay all dead letters</button>`}
    </div>
    <${ErrorLine} error=${error} />
    ${page && (page.results.length === 0 ? html`<p class="empty">No deliveries.</p>`
      : page.results.map((d) => html`<${Delivery} key=${d.id} delivery=${d} onChanged=${load} />`))}
  </section>`;
}

function Page() {
  const [tab, setTab] = useState("inbound");
  const [count, setCount] = useState(null);
  return html`
    <div class="tabs" role="tablist">
      <button class="tab" role="tab" aria-selected=${tab === "inbound"} onClick=${() => setTab("inbound")}>
        Needs attention${count !== null && html`<span class="count" data-testid="attention-count">${count}</span>`}</button>
      <button class="tab" role="tab" aria-selected=${tab === "outbound"} onClick=${() => setTab("outbound")}>
        Outbound webhooks</button>
    </div>
    ${tab === "inbound" ? html`<${Inbound} onCount=${setCount} />` : html`<${Outbound} />`}`;
}

render(html`<${Page} />`, document.getElementById("integrations"));
