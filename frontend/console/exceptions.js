// "Needs review": deliveries the platform would not overwrite (a stop completed twice,
// a delivery recorded after its order was closed; docs/pod.md#conflicts). Listed from
// GET /api/v1/pod-exceptions/, read again whenever the feed brings a pod.exception, and
// marked reviewed by the dispatcher (nothing about the stop or order changes then).

import { html, useEffect, useState } from "preact-htm";

import { api, describeError } from "../common/api.js";

const KIND_LABELS = { double_completion: "Completed twice", completed_after_close: "Delivered after the order closed" };

export function ExceptionsCard({ feed, onSelect }) {
  const [rows, setRows] = useState([]);
  const [error, setError] = useState(null);
  // The newest pod.exception in the feed: when it changes, there is something new to list.
  const latest = feed.find((line) => line.type === "pod.exception" || line.type === "pod.exception_resolved")?.seq ?? 0;

  const load = () => api("pod-exceptions/").then((page) => {
    setRows(page.results);
    setError(null);
  }).catch((e) => setError(describeError(e)));
  useEffect(() => {
    load();
  }, [latest]);

  const resolve = async (row) => {
    try {
      await api(`pod-exceptions/${row.id}/resolve/`, { method: "POST", body: {} });
      setRows((all) => all.filter((r) => r.id !== row.id));
    } catch (e) {
      setError(describeError(e));
    }
  };

  if (!rows.length && !error) return null;
  return html`
    <section class="card review" data-testid="exceptions" aria-label="Deliveries to review">
      <h3 class="section-title">Needs review <span class="tab-count">${rows.length}</span></h3>
      ${error ? html`<p class="text-failed">${error}</p>` : null}
      <ul class="review-list">
        ${rows.map((row) => html`
          <li key=${row.id} data-testid="exception-row">
            <div><strong>${KIND_LABELS[row.kind] || row.kind}</strong> <span class="muted">stop ${row.stop}</span></div>
            <div class="muted">${row.message}</div>
            <div class="review-actions">
              <button type="button" class="btn btn-small" onClick=${() => onSelect({ routeId: row.route, stopId: row.stop })}>Show</button>
              <button type="button" class="btn btn-small btn-ghost" onClick=${() => resolve(row)}>Mark reviewed</button>
            </div>
          </li>`)}
      </ul>
    </section>`;
}
