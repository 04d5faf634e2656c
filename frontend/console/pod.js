// Proof of delivery in the stop details: photos, signature, recipient, times, flags,
// and a small map of where it was captured against the delivery address, with the
// distance. Media comes through signed links that expire (apps/pod/signing.py), so
// the panel asks for them each time it opens; only re-encoded copies are shown.

import * as L from "leaflet";
import { html, useEffect, useRef, useState } from "preact-htm";

import { api, describeError } from "../common/api.js";
import { formatTime } from "../common/format.js";

const FLAG_LABELS = {
  far_from_address: "Captured far from the address",
  no_location: "No location from the phone",
  captured_offline: "Captured offline",
  double_completion: "Completed twice: review",
  completed_after_close: "Completed after the order was closed: review",
};
const WARN_FLAGS = new Set(["far_from_address", "double_completion", "completed_after_close"]);

function formatDistance(metres) {
  if (metres == null) return "";
  return metres >= 1000 ? `${(metres / 1000).toFixed(1)} km` : `${Math.round(metres)} m`;
}

function CaptureMap({ pod }) {
  const element = useRef(null);
  useEffect(() => {
    if (pod.lat == null || pod.address_lat == null) return undefined;
    const map = L.map(element.current, { attributionControl: false, zoomControl: false, dragging: false,
      scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false, keyboard: false, tap: false });
    const address = [pod.address_lat, pod.address_lng];
    const capture = [pod.lat, pod.lng];
    L.circleMarker(address, { radius: 7, color: "#fff", weight: 2, fillColor: "#2457d6", fillOpacity: 1 })
      .bindTooltip("Address").addTo(map);
    if (pod.accuracy_m) L.circle(capture, { radius: pod.accuracy_m, color: "#b45309", weight: 1, fillOpacity: 0.1 }).addTo(map);
    L.circleMarker(capture, { radius: 6, color: "#fff", weight: 2, fillColor: "#b45309", fillOpacity: 1 })
      .bindTooltip("Captured here").addTo(map);
    L.polyline([address, capture], { color: "#4a5566", weight: 2, dashArray: "4 4" }).addTo(map);
    map.fitBounds(L.latLngBounds([address, capture]).pad(0.6), { maxZoom: 17 });
    return () => map.remove();
  }, [pod.id]);
  if (pod.lat == null || pod.address_lat == null) return null;
  return html`<div class="pod-map" ref=${element} data-testid="pod-map" aria-label="Capture point and address"></div>`;
}

function PodRecord({ pod, tz }) {
  return html`
    <div class="pod-record" data-testid="pod-record" data-pod-id=${pod.id}>
      ${pod.flags.length ? html`
        <div class="pod-flags">${pod.flags.map((f) => html`
          <span class=${`pod-flag${WARN_FLAGS.has(f) ? " is-warn" : ""}`} data-flag=${f}>${FLAG_LABELS[f] || f}</span>`)}</div>` : null}
      ${pod.photos.length ? html`
        <div class="pod-photos">
          ${pod.photos.map((p, i) => html`
            <a href=${p.urls.display} target="_blank" rel="noopener" key=${p.id} title="Open the photo">
              <img src=${p.urls.thumb} alt=${`Delivery photo ${i + 1}`} data-testid="pod-photo" loading="lazy" />
            </a>`)}
        </div>` : null}
      ${pod.signature ? html`
        <img class="pod-signature" src=${pod.signature.urls.display} alt="Recipient's signature" data-testid="pod-signature" />` : null}
      <dl class="facts pod-facts">
        ${pod.recipient_name ? html`<div class="fact"><dt>Recipient</dt><dd>${pod.recipient_name}</dd></div>` : null}
        <div class="fact"><dt>Captured</dt><dd>${pod.device_time ? formatTime(pod.device_time, tz) : "—"}
          <span class="muted"> (phone) · received ${formatTime(pod.created_at, tz)}</span></dd></div>
        ${pod.driver_name ? html`<div class="fact"><dt>Driver</dt><dd>${pod.driver_name}</dd></div>` : null}
        ${pod.pin_verified != null ? html`<div class="fact"><dt>PIN</dt><dd>${pod.pin_verified ? "Checked" : "Did not match"}</dd></div>` : null}
        ${pod.barcode ? html`<div class="fact"><dt>Barcode</dt><dd>${pod.barcode}</dd></div>` : null}
        ${pod.age_verified ? html`<div class="fact"><dt>Age</dt><dd>ID checked</dd></div>` : null}
        ${pod.notes ? html`<div class="fact"><dt>Notes</dt><dd>${pod.notes}</dd></div>` : null}
        <div class="fact"><dt>Where</dt><dd data-testid="pod-distance">${pod.distance_m != null
          ? `${formatDistance(pod.distance_m)} from the address${pod.accuracy_m ? ` (GPS ±${Math.round(pod.accuracy_m)} m)` : ""}`
          : "No location"}</dd></div>
      </dl>
      <${CaptureMap} pod=${pod} />
      ${pod.photos.length ? html`<div class="muted pod-evidence">Originals (unchanged, with their SHA-256):
        ${pod.photos.map((p, i) => html` <a href=${p.urls.original} data-testid="pod-original">photo ${i + 1}</a>`)}</div>` : null}
    </div>`;
}

// A cancelled stop can carry proof too: a delivery recorded after its order was
// cancelled is kept there for review (docs/pod.md#conflicts).
const MAY_HAVE_PROOF = new Set(["completed", "cancelled"]);

/** The POD of a completed stop, loaded when shown (and again when the stop changes). */
export function PodPanel({ stop, tz }) {
  const [pods, setPods] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!MAY_HAVE_PROOF.has(stop.state)) return undefined;
    const controller = new AbortController();
    setPods(null);
    api("pods/", { params: { stop: stop.id }, signal: controller.signal })
      .then((page) => setPods(page.results))
      .catch((e) => e.name !== "AbortError" && setError(describeError(e)));
    return () => controller.abort();
  }, [stop.id, stop.state, stop.completed_at]);
  if (!MAY_HAVE_PROOF.has(stop.state)) return null;
  if (stop.state !== "completed" && !pods?.length) return null;
  return html`
    <section class="pod" data-testid="pod" aria-label="Proof of delivery">
      <h3 class="section-title">Proof of delivery</h3>
      ${error ? html`<p class="text-failed">${error}</p>` : null}
      ${pods === null && !error ? html`<p class="muted">Loading…</p>` : null}
      ${pods && !pods.length ? html`<p class="muted">No proof was captured for this stop.</p>` : null}
      ${pods?.map((pod) => html`<${PodRecord} key=${pod.id} pod=${pod} tz=${tz} />`)}
    </section>`;
}
