// The console map: hubs, each route as a coloured line through numbered stops,
// unplanned orders, and the drivers (markers.js). Leaflet needs no base layer:
// without MAP_TILE_URL the page draws on a plain background and makes no request to
// any other host.
//
// render() draws a day from scratch and fits it in view; sync() brings the map in
// line with a changed day (live updates) without moving the view, redrawing only
// the routes that changed.

import * as L from "leaflet";

import { formatTime, formatWindow } from "../common/format.js";
import { escapeHtml } from "./escape.js";
import { DriverMarkers } from "./markers.js";
import { hasCoords, stopStatus, STOP_STATUSES } from "./snapshot.js";

export { escapeHtml };

const STATUS_LABEL = Object.fromEntries(STOP_STATUSES.map((s) => [s.key, s.label]));
const HUB_SVG =
  '<svg viewBox="0 0 24 24" width="16" height="16" aria-hidden="true"><path fill="currentColor" ' +
  'd="M12 3 2 8.5V21h6v-6h8v6h6V8.5L12 3Zm-2 14H9v-1h1v1Zm5 0h-1v-1h1v1Z"/></svg>';

// What a route's drawing depends on: when this is unchanged, so is the picture.
function drawKey(route) {
  return JSON.stringify([
    route.color, route.label, route.status, route.start_lat, route.start_lng, route.end_lat, route.end_lng,
    route.stops.map((s) => [s.id, s.sequence, s.state, s.outcome, s.order?.lat, s.order?.lng, s.order?.customer_name,
      s.eta, s.arrived_at, s.completed_at]),
  ]);
}

export class ConsoleMap {
  /**
   * @param {HTMLElement} element
   * @param {{tileUrl?: string, tileAttribution?: string, timezone: string,
   *          onSelectRoute?: (id: number|null) => void, onSelectStop?: (routeId: number, stopId: number) => void,
   *          onSelectDriver?: (id: number) => void, overlays?: () => {right: number, bottom: number}}} options
   *   `overlays`: how much of the map's right and bottom edges floating panels cover.
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
    this.drivers = new DriverMarkers(this.map, { timezone: options.timezone, onSelect: (id) => options.onSelectDriver?.(id) });
    this.routes = new Map(); // route id -> {line, markers: Map(stop id -> marker), bounds, key}
    this.focused = null;
    this.drawnHubs = null;
    this.drawnUnplanned = null;
    this.map.on("click", () => this.options.onSelectRoute?.(null));
  }

  /** Replace everything on the map with the day in `day`, and fit it in view. */
  render(day) {
    this.routeLayer.clearLayers();
    this.routes.clear();
    this.focused = null;
    this.sync(day);
    this.fitAll();
  }

  /** Bring the map in line with `day` without moving the view. */
  sync(day) {
    if (day.hubs !== this.drawnHubs) this._drawHubs(day.hubs);
    if (day.unplanned !== this.drawnUnplanned) this._drawUnplanned(day.unplanned);
    const wanted = new Set(day.routes.map((r) => r.id));
    for (const id of [...this.routes.keys()]) {
      if (!wanted.has(id)) this._removeRoute(id);
    }
    for (const route of day.routes) {
      const key = drawKey(route);
      const drawn = this.routes.get(route.id);
      if (drawn?.key === key) continue;
      if (drawn) this._removeRoute(route.id);
      this._drawRoute(route, key);
    }
    this._styleFocus();
  }

  _drawHubs(hubs) {
    this.drawnHubs = hubs;
    this.hubLayer.clearLayers();
    for (const hub of hubs.filter(hasCoords)) {
      L.marker([hub.lat, hub.lng], {
        icon: L.divIcon({ className: "hub-marker", html: HUB_SVG, iconSize: [30, 30], iconAnchor: [15, 15] }),
        keyboard: false,
        zIndexOffset: 1000,
      })
        .bindTooltip(`<strong>${escapeHtml(hub.name)}</strong><br>Hub ${escapeHtml(hub.code)}`, { direction: "top", offset: [0, -14] })
        .addTo(this.hubLayer);
    }
  }

  _drawUnplanned(orders) {
    const tz = this.options.timezone;
    this.drawnUnplanned = orders;
    this.orderLayer.clearLayers();
    for (const order of orders) {
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
  }

  _removeRoute(routeId) {
    const drawn = this.routes.get(routeId);
    if (!drawn) return;
    this.routeLayer.removeLayer(drawn.line);
    for (const marker of drawn.markers.values()) this.routeLayer.removeLayer(marker);
    this.routes.delete(routeId);
  }

  _drawRoute(route, key) {
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
      marker.getElement().dataset.stopId = String(stop.id);
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
    this.routes.set(route.id, { line, markers, bounds: L.latLngBounds(points), key });
  }

  _allBounds() {
    const bounds = L.latLngBounds([]);
    for (const layer of [this.hubLayer, this.orderLayer]) {
      layer.eachLayer((m) => bounds.extend(m.getLatLng()));
    }
    for (const { bounds: b } of this.routes.values()) bounds.extend(b);
    return bounds;
  }

  // Room around fitted bounds, plus what floats over the map's edges (the feed, the legend).
  _padding(base) {
    const { right = 0, bottom = 0 } = this.options.overlays?.() || {};
    return { paddingTopLeft: [base, base], paddingBottomRight: [base + right, base + bottom] };
  }

  fitAll() {
    const bounds = this._allBounds();
    if (!bounds.isValid()) {
      // Nothing planned: the drivers are what there is to see.
      const drivers = this.drivers.bounds();
      if (drivers.isValid()) this.map.fitBounds(drivers, { ...this._padding(64), maxZoom: 14 });
      return;
    }
    this.map.fitBounds(bounds, { ...this._padding(48), maxZoom: 15 });
  }

  _styleFocus() {
    const routeId = this.focused;
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
    this.drivers.focusRoute(routeId);
  }

  /** Bring one route forward (dim the others) and zoom to it; `null` shows all again. */
  focus(routeId, { fit = true } = {}) {
    const changed = routeId !== this.focused;
    this.focused = routeId;
    this._styleFocus();
    if (!fit || !changed) return;
    const target = routeId != null ? this.routes.get(routeId)?.bounds : null;
    if (target?.isValid()) this.map.fitBounds(target, { ...this._padding(64), maxZoom: 16 });
    else if (routeId == null) this.fitAll();
  }

  /** Point at one stop: open its tooltip and pan to it if it is off screen. */
  showStop(routeId, stopId) {
    const marker = this.routes.get(routeId)?.markers.get(stopId);
    if (!marker) return;
    if (!this.map.getBounds().contains(marker.getLatLng())) this.map.panTo(marker.getLatLng());
    marker.openTooltip();
  }

  /** Drivers' markers: see DriverMarkers.update(). */
  updateDrivers(rows) {
    this.drivers.update(rows);
  }

  selectDriver(driverId) {
    this.drivers.select(driverId);
    if (driverId != null) this.drivers.show(driverId);
  }

  invalidateSize() {
    this.map.invalidateSize();
  }
}
