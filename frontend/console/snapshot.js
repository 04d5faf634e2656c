// The console's picture of one day, loaded from the REST API and shaped for the
// panel and the map. Live updates (a later issue) will patch this same shape.

import { api, apiList } from "../common/api.js";

// Route colours avoid the green, amber and red that mean stop states.
export const ROUTE_COLORS = [
  "#2563eb", "#7c3aed", "#0891b2", "#db2777", "#4f46e5",
  "#0f766e", "#9333ea", "#c2410c", "#1e40af", "#be185d",
];

// Stop states as the map and legend show them: a completed stop splits by outcome.
export const STOP_STATUSES = [
  { key: "pending", label: "Pending" },
  { key: "arrived", label: "Arrived" },
  { key: "succeeded", label: "Delivered" },
  { key: "failed", label: "Failed" },
  { key: "cancelled", label: "Cancelled" },
];

export const ROUTE_STATUS_LABELS = {
  draft: "Draft",
  published: "Published",
  in_progress: "In progress",
  completed: "Completed",
};

// Orders by state, with completed split by outcome.
export const ORDER_STATUSES = [
  { key: "created", label: "Unplanned" },
  { key: "planned", label: "Planned" },
  { key: "dispatched", label: "Dispatched" },
  { key: "out_for_delivery", label: "Out for delivery" },
  { key: "delivered", label: "Delivered" },
  { key: "failed", label: "Failed" },
  { key: "returned", label: "Returned" },
  { key: "cancelled", label: "Cancelled" },
];

export function stopStatus(stop) {
  if (stop.state === "completed") return stop.outcome === "failed" ? "failed" : "succeeded";
  return stop.state;
}

export const hasCoords = (place) => place && place.lat != null && place.lng != null;

function routeProgress(stops) {
  const live = stops.filter((s) => s.state !== "cancelled");
  const done = live.filter((s) => s.state === "completed");
  return {
    total: live.length,
    done: done.length,
    failed: done.filter((s) => s.outcome === "failed").length,
    cancelled: stops.length - live.length,
  };
}

/**
 * Orders by state for the day: every order with a stop on the day's routes (its
 * current state; a completed one by the outcome of its latest stop), plus the
 * unplanned backlog. The API has no aggregate endpoint, so this counts what the
 * page loaded.
 */
export function orderSummary(routes, unplanned) {
  const byOrder = new Map();
  for (const route of routes) {
    for (const stop of route.stops) {
      if (!stop.order) continue;
      const seen = byOrder.get(stop.order.id);
      if (seen && seen.stopId > stop.id) continue;
      let key = stop.order.state;
      if (key === "completed") key = stop.outcome === "failed" ? "failed" : "delivered";
      byOrder.set(stop.order.id, { key, stopId: stop.id });
    }
  }
  for (const order of unplanned) byOrder.set(order.id, { key: order.state, stopId: Infinity });
  const counts = Object.fromEntries(ORDER_STATUSES.map((s) => [s.key, 0]));
  for (const { key } of byOrder.values()) counts[key] = (counts[key] || 0) + 1;
  return { counts, total: byOrder.size };
}

/** Load the day: hubs, its routes with their stops, and the unplanned orders. */
export async function loadSnapshot(date, { signal } = {}) {
  const [hubs, routeRows, unplanned] = await Promise.all([
    apiList("hubs/", { signal }),
    apiList("routes/", { params: { date }, signal }),
    apiList("orders/", { params: { state: "created" }, limit: 2000, signal }),
  ]);
  // The route list carries no stops; each route's detail does.
  const details = await Promise.all(routeRows.map((row) => api(`routes/${row.id}/`, { signal })));
  details.sort((a, b) => a.id - b.id);
  const routes = details.map((route, index) => ({
    ...route,
    label: route.name || `Route ${route.id}`,
    color: ROUTE_COLORS[index % ROUTE_COLORS.length],
    progress: routeProgress(route.stops),
  }));
  return {
    date,
    hubs,
    routes,
    unplanned: unplanned.filter(hasCoords),
    unplannedWithoutCoords: unplanned.filter((o) => !hasCoords(o)).length,
    unplannedTruncated: Boolean(unplanned.truncated),
    summary: orderSummary(routes, unplanned),
  };
}
