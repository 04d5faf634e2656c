"""How a simulated delivery attempt ends: pure, drawn from the caller's seeded RNG."""

from __future__ import annotations

import random
from dataclasses import dataclass

# First-attempt success in urban parcel delivery is commonly put at 90-95%; the
# failures are mostly nobody at home, then no way into the building, then refusals.
DELIVERED_RATE = 0.93
FAILURE_REASONS = {"recipient_absent": 0.70, "access_denied": 0.18, "refused": 0.12}
NOTES = {
    "recipient_absent": ["Nobody answered; card left in the letterbox.", "Rang twice, no answer.",
                         "No one home; neighbours not in either."],
    "access_denied": ["Gate locked, no answer on the intercom.", "Concierge would not let me in."],
    "refused": ["Customer refused the parcel.", "Recipient says they did not order this."],
}
DELIVERED_NOTES = ["", "", "", "", "Handed to the recipient.", "Left with the neighbour at no. 3.",
                   "Left at the reception."]


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    reason: str  # a FailureReason value, or "" when delivered
    notes: str


def stop_outcome(rng: random.Random) -> Outcome:
    if rng.random() < DELIVERED_RATE:
        return Outcome(delivered=True, reason="", notes=rng.choice(DELIVERED_NOTES))
    reason = rng.choices(list(FAILURE_REASONS), weights=list(FAILURE_REASONS.values()))[0]
    return Outcome(delivered=False, reason=reason, notes=rng.choice(NOTES[reason]))
