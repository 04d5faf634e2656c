// The console map: hubs, each route as a coloured line through numbered stops, and
// unplanned orders. Leaflet needs no base layer: without MAP_TILE_URL the page
// draws on a plain background and makes no request to any other host.

import * as L from "leaflet";

import { formatTime, formatWindow } from "../common/format.js";
import { hasCoords, stopStatus, STOP_STATUSES } from "./snapshot.js";

const STATUS_LABEL = Object.fromEntries(STOP_STATUSES.map((s) => [s.key, s.label]));
const HUB_SVG =
  '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path fill="currentColor" ' +
  'd="M12 3 2 8.5V21h6v-6h8v6h6V8.5L12 3Zm-2 14H9v-1h1v1Zm5 0h-1v-1h1v1Z"/></svg>';

export function escapeHtml(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export class ConsoleMap {
  /**
   * @param {HTMLElement} element
   * @param {{tileUrl?: string, tileAttribution?: string, timezone: string,
   *          onSelectRoute?: (id: number|null) => void, onSelectStop?: (routeId: number, stopId: number) => void}} options
   */
  constructor(element, options) {
    this.options = options;
    this.map = L.map(element, {
      preferCanvas: true,
      zoomSnap: 0.25,
      attributionControl: Boolean(options.tileUrl),
      center: [20, 0],
      zoom: 2,
    });
    if (options.tileUrl) {
      L.tileLayer(options.tileUrl, { attribution: options.tileAttribution || "", maxZoom: 19 }).addTo(this.map);
    }
    L.control.scale({ position: "bottomright", imperial: false }).addTo(this.map);
    this.hubLayer = L.layerGroup().addTo(this.map);
    this.orderLayer = L.layerGroup().addTo(this.map);
    this.routeLayer = L.layerGroup().addTo(this.map);
    this.routes = new Map(); // route id -> {line, markers: Map(stop id -> marker), bounds}
    this.focused = null;
    this.map.on("click", () => this.options.onSelectRoute?.(null));
  }

  /** Replace everything on the map with the day in `snapshot`, and fit it in view. */
  render(snapshot) {
    const tz = this.options.timezone;
    this.hubLayer.clearLayers();
    this.orderLayer.clearLayers();
    this.routeLayer.clearLayers();
    this.routes.clear();
    this.focused = null;

    for (const hub of snapshot.hubs.filter(hasCoords)) {
      L.marker([hub.lat, hub.lng], {
        icon: L.divIcon({ className: "hub-marker", html: HUB_SVG, iconSize: [30, 30], iconAnchor: [15, 15] }),
        keyboard: false,
        zIndexOffset: 1000,
      })
        .bindTooltip(`<strong>${escapeHtml(hub.name)}</strong><br>Hub ${escapeHtml(hub.code)}`, { direction: "top", offset: [0, -14] })
        .addTo(this.hubLayer);
    }

    for (const order of snapshot.unplanned) {
      L.marker([order.lat, order.lng], {
        icon: L.divIcon({ className: "order-marker", iconSize: [12, 12], iconAnchor: [6, 6] }),
        keyboard: false,
      })
        .bindTooltip(
          `<strong>${escapeHtml(order.customer_name)}</strong> · unplanned<br>` +
            `${escapeHtml(order.address_line1)}, ${escapeHtml(order.city)}<br>` +
            `Window ${escapeHtml(formatWindow(order.window_start, order.window_end, tz))}`,
          { direction: "top", offset: [0, -6] },
        )
        .addTo(this.orderLayer);
    }

    for (const route of snapshot.routes) this._drawRoute(route);
    this.fitAll();
  }

  _drawRoute(route) {
    const tz = this.options.timezone;
    const points = [[route.start_lat, route.start_lng]];
    const markers = new Map();
    for (const stop of route.stops) {
      if (!hasCoords(stop.order)) continue;
      const latlng = [stop.order.lat, stop.order.lng];
      if (stop.state !== "cancelled") points.push(latlng);
      const status = stopStatus(stop);
      const when = stop.completed_at ? `Done ${formatTime(stop.completed_at, tz)}`
        : stop.arrived_at ? `Arrived ${formatTime(stop.arrived_at, tz)}`
        : stop.eta ? `ETA ${formatTime(stop.eta, tz)}` : "";
      const marker = L.marker(latlng, {
        icon: L.divIcon({
          className: `stop-marker is-${status}`,
          html: `<span style="--route-color:${route.color}">${stop.sequence}</span>`,
          iconSize: [24, 24],
          iconAnchor: [12, 12],
        }),
        keyboard: false,
        riseOnHover: true,
      })
        .bindTooltip(
          `<strong>${escapeHtml(route.label)} · stop ${stop.sequence}</strong><br>` +
            `${escapeHtml(stop.order.customer_name)} · ${STATUS_LABEL[status] || status}<br>` +
            `Window ${escapeHtml(formatWindow(stop.order.window_start, stop.order.window_end, tz))}` +
            (when ? ` · ${when}` : ""),
          { direction: "top", offset: [0, -12] },
        )
        .on("click", (event) => {
          L.DomEvent.stopPropagation(event);
          this.options.onSelectStop?.(route.id, stop.id);
        })
        .addTo(this.routeLayer);
      marker.routeId = route.id;
      markers.set(stop.id, marker);
    }
    points.push([route.end_lat, route.end_lng]);
    const line = L.polyline(points, { color: route.color, weight: 4, opacity: 0.85, lineJoin: "round" })
      .on("click", (event) => {
        L.DomEvent.stopPropagation(event);
        this.options.onSelectRoute?.(route.id);
      })
      .addTo(this.routeLayer);
    line.bringToBack();
    this.routes.set(route.id, { line, markers, bounds: L.latLngBounds(points) });
  }

  _allBounds() {
    const bounds = L.latLngBounds([]);
    for (const layer of [this.hubLayer, this.orderLayer]) {
      layer.eachLayer((m) => bounds.extend(m.getLatLng()));
    }
    for (const { bounds: b } of this.routes.values()) bounds.extend(b);
    return bounds;
  }

  fitAll() {
    const bounds = this._allBounds();
    if (bounds.isValid()) this.map.fitBounds(bounds, { padding: [48, 48], maxZoom: 15 });
  }

  /** Bring one route forward (dim the others) and zoom to it; `null` shows all again. */
  focus(routeId) {
    this.focused = routeId;
    for (const [id, { line, markers }] of this.routes) {
      const dim = routeId != null && id !== routeId;
      line.setStyle({ opacity: dim ? 0.15 : 0.85, weight: id === routeId ? 6 : 4 });
      if (id === routeId) line.bringToFront();
      for (const marker of markers.values()) {
        marker.getElement()?.classList.toggle("is-dimmed", dim);
        marker.setZIndexOffset(id === routeId ? 500 : 0);
      }
    }
    this.orderLayer.eachLayer((m) => m.getElement()?.classList.toggle("is-dimmed", routeId != null));
    const target = routeId != null ? this.routes.get(routeId)?.bounds : null;
    if (target?.isValid()) this.map.fitBounds(target, { padding: [64, 64], maxZoom: 16 });
    else if (routeId == null) this.fitAll();
  }

  /** Point at one stop: open its tooltip and pan to it if it is off screen. */
  showStop(routeId, stopId) {
    const marker = this.routes.get(routeId)?.markers.get(stopId);
    if (!marker) return;
    if (!this.map.getBounds().contains(marker.getLatLng())) this.map.panTo(marker.getLatLng());
    marker.openTooltip();
  }

  invalidateSize() {
    this.map.invalidateSize();
  }
}
