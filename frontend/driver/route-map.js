// The driver's route on a map: numbered stops in order, the line between them, and
// where the phone is. Without MAP_TILE_URL there is no base layer and no request
// leaves the server (as in the console).

import * as L from "leaflet";

const COLORS = { pending: "#2457d6", arrived: "#b45309", succeeded: "#15803d", failed: "#c62828", cancelled: "#8a94a3" };

function colorOf(stop) {
  if (stop.state === "completed") return COLORS[stop.outcome] || COLORS.succeeded;
  return COLORS[stop.state] || COLORS.pending;
}

export class RouteMap {
  constructor(element, { tileUrl, tileAttribution, onSelectStop }) {
    this.map = L.map(element, { preferCanvas: true, attributionControl: Boolean(tileUrl), center: [52.52, 13.4], zoom: 12 });
    if (tileUrl) L.tileLayer(tileUrl, { attribution: tileAttribution || "", maxZoom: 19 }).addTo(this.map);
    this.layer = L.layerGroup().addTo(this.map);
    this.me = null;
    this.onSelectStop = onSelectStop;
    this.fitted = false;
  }

  show(route) {
    this.layer.clearLayers();
    const points = [];
    if (route.start_lat != null) points.push([route.start_lat, route.start_lng]);
    for (const stop of [...route.stops].sort((a, b) => a.sequence - b.sequence)) {
      if (stop.order?.lat == null || stop.order?.lng == null) continue;
      const at = [stop.order.lat, stop.order.lng];
      points.push(at);
      const icon = L.divIcon({
        className: "driver-stop-marker",
        html: `<span style="background:${colorOf(stop)}">${stop.sequence}</span>`,
        iconSize: [28, 28], iconAnchor: [14, 14],
      });
      L.marker(at, { icon, title: stop.order.customer_name, keyboard: false })
        .on("click", () => this.onSelectStop?.(stop.id))
        .addTo(this.layer);
    }
    if (points.length > 1) L.polyline(points, { color: "#2457d6", weight: 3, opacity: 0.6 }).addTo(this.layer);
    if (points.length && !this.fitted) {
      this.map.fitBounds(L.latLngBounds(points).pad(0.15));
      this.fitted = true;
    }
  }

  showMe(fix) {
    if (!fix) return;
    const at = [fix.lat, fix.lng];
    if (!this.me) {
      this.me = L.circleMarker(at, { radius: 8, color: "#fff", weight: 3, fillColor: "#2457d6", fillOpacity: 1 }).addTo(this.map);
    } else {
      this.me.setLatLng(at);
    }
  }

  resize() {
    this.map.invalidateSize();
  }
}
