// The console's picture of one day, loaded from the REST API and shaped for the
// panel and the map. Live updates (events.js) patch this same shape.

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

/** Routes as the panel and the map show them: in id order, each with a label, a colour and its progress. */
export function decorateRoutes(routes) {
  return [...routes].sort((a, b) => a.id - b.id).map((route, index) => decorateRoute(route, index));
}

function decorateRoute(route, index) {
  return {
    ...route,
    label: route.name || `Route ${route.id}`,
    color: ROUTE_COLORS[index % ROUTE_COLORS.length],
    progress: routeProgress(route.stops),
  };
}

/**
 * The day's picture from its parts. `routes` as the API returns them (with stops);
 * `backlog` is the unplanned orders, with or without coordinates.
 */
export function buildDay({ date, hubs, routes, backlog, backlogTruncated = false }) {
  const decorated = decorateRoutes(routes);
  return {
    date,
    hubs,
    routes: decorated,
    backlog,
    backlogTruncated,
    unplanned: backlog.filter(hasCoords),
    unplannedWithoutCoords: backlog.filter((o) => !hasCoords(o)).length,
    unplannedTruncated: backlogTruncated,
    summary: orderSummary(decorated, backlog),
  };
}

/** The same day with some parts replaced; everything derived is recomputed. */
export function updateDay(day, parts) {
  return buildDay({
    date: day.date,
    hubs: day.hubs,
    routes: day.routes,
    backlog: day.backlog,
    backlogTruncated: day.backlogTruncated,
    ...parts,
  });
}

/** The unplanned backlog: every order not yet on a route. */
export async function loadBacklog({ signal } = {}) {
  return apiList("orders/", { params: { state: "created" }, limit: 2000, signal });
}

/** Load one route with its stops. */
export function loadRoute(routeId, { signal } = {}) {
  return api(`routes/${routeId}/`, { signal });
}

/** Load the day: hubs, its routes with their stops, and the unplanned orders. */
export async function loadSnapshot(date, { signal } = {}) {
  const [hubs, routeRows, backlog] = await Promise.all([
    apiList("hubs/", { signal }),
    apiList("routes/", { params: { date }, signal }),
    loadBacklog({ signal }),
  ]);
  // The route list carries no stops; each route's detail does.
  const routes = await Promise.all(routeRows.map((row) => loadRoute(row.id, { signal })));
  return buildDay({ date, hubs, routes, backlog, backlogTruncated: Boolean(backlog.truncated) });
}
