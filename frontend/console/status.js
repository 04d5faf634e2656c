// The live connection's state in the header: a dispatcher must see at a glance
// whether the map is current.

import { html } from "preact-htm";

import { STATUS } from "../common/live.js";

const SHOWN = {
  [STATUS.CONNECTING]: { label: "Connecting…", tone: "pending", title: "Opening the live connection." },
  [STATUS.LIVE]: { label: "Live", tone: "live", title: "Up to date: changes and drivers' positions appear as they happen." },
  [STATUS.RESYNCING]: { label: "Resyncing…", tone: "pending", title: "Back online; catching up on what happened meanwhile." },
  [STATUS.RECONNECTING]: { label: "Reconnecting…", tone: "warn", title: "The live connection dropped; reconnecting." },
  [STATUS.OFFLINE]: { label: "Offline", tone: "down", title: "No connection to the server. What you see may be out of date." },
  [STATUS.DENIED]: { label: "Offline", tone: "down", title: "" },
  [STATUS.CLOSED]: { label: "Not live", tone: "idle", title: "" },
  idle: { label: "Not live", tone: "idle", title: "" },
};

export function LiveStatus({ live, isToday }) {
  // Today's page opens its socket at once: no "Not live" flash before it does.
  const status = isToday ? (live.status === "idle" ? STATUS.CONNECTING : live.status) : "idle";
  const shown = SHOWN[status] || SHOWN.idle;
  let title = shown.title;
  if (!isToday) title = "Live updates show today. This is a past or planned day as it is stored now.";
  else if (status === STATUS.DENIED) title = live.message;
  else if (live.retryAt && (status === STATUS.OFFLINE || status === STATUS.RECONNECTING)) {
    const seconds = Math.max(1, Math.round((live.retryAt - Date.now()) / 1000));
    title += ` Next attempt in ${seconds} s.`;
  }
  return html`
    <span class=${`live-pill tone-${shown.tone}`} data-testid="live-status" data-status=${status} title=${title}
          role="status" aria-live="polite">
      <span class="live-dot" aria-hidden="true"></span>${shown.label}
    </span>`;
}
