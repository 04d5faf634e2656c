// The tracking page's data: the snapshot the server sends, updated by live messages.
// Pure functions, so the rules (what replaces what) are easy to read and test.

/** Apply a `delivery` live message (ETA, stops away, driver) to the page state. */
export function applyDelivery(state, delivery) {
  if (!state || isFinished(state)) return state; // after completion nothing live is shown
  return { ...state, delivery, eta: delivery.eta };
}

/** Apply order events (state changes) from the event stream. */
export function applyEvents(state, events) {
  let next = state;
  for (const event of events) {
    if (!event.type.startsWith("order.")) continue;
    const payload = event.payload || {};
    const order = { ...next.order };
    if (payload.state) order.state = payload.state;
    if (payload.outcome !== undefined) order.outcome = payload.outcome;
    if (payload.failure_reason !== undefined) order.failure_reason = payload.failure_reason;
    next = { ...next, order };
    if (event.type === "order.delivered" || event.type === "order.failed") {
      next = { ...next, delivery: null, eta: null, needsRefresh: true };
    }
  }
  return next;
}

export function isFinished(state) {
  return ["completed", "cancelled", "returned"].includes(state.order.state);
}

export const FAILURE_TEXT = {
  recipient_absent: "We could not find anyone at home.",
  refused: "The delivery was refused.",
  address_not_found: "The driver could not find the address.",
  access_denied: "The driver could not get access.",
  damaged: "The parcel was damaged.",
  unsafe: "It was not safe to deliver.",
  other: "The delivery could not be completed.",
};
