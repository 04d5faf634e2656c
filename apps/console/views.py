"""The dispatcher's console: a server-rendered shell. The page's data comes from the
REST API (session-authenticated), so the view only checks access and passes the
few facts the page needs before its first request."""

import zoneinfo
from datetime import date

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from apps.accounts.models import Role

CONSOLE_ROLES = (Role.ADMIN, Role.DISPATCHER)


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console")
    return redirect("login")


def _org_today(tz_name: str) -> date:
    try:
        tz = zoneinfo.ZoneInfo(tz_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = zoneinfo.ZoneInfo("UTC")
    return timezone.now().astimezone(tz).date()


def _requested_date(raw: str | None, default: date) -> date:
    """``?date=YYYY-MM-DD`` makes a day shareable as a link; anything else means today."""
    try:
        return date.fromisoformat(raw) if raw else default
    except ValueError:
        return default


@login_required
def console(request: HttpRequest) -> HttpResponse:
    membership = getattr(request.user, "membership", None)
    if membership is not None and membership.role == Role.DRIVER:
        return redirect("driver")  # a driver signing in lands in their app
    if membership is None or membership.role not in CONSOLE_ROLES:
        # Drivers have their own app; people outside any organization have nothing to see.
        return render(request, "console/forbidden.html", {"membership": membership}, status=403)
    org = membership.org
    today = _org_today(org.timezone)
    day = _requested_date(request.GET.get("date"), today)
    return render(request, "console/console.html", {
        "membership": membership,
        "org": org,
        "date": day,
        "page_config": {
            "orgName": org.name,
            "timezone": org.timezone,
            "today": today.isoformat(),
            "date": day.isoformat(),
            "tileUrl": settings.MAP_TILE_URL,
            "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        },
    })


@login_required
def reports(request: HttpRequest) -> HttpResponse:
    """Operations insight: KPI tiles, a daily chart, breakdowns, drill-down and CSV. The
    figures come from /api/v1/reports/ (docs/reports.md)."""
    membership = getattr(request.user, "membership", None)
    if membership is None or membership.role not in CONSOLE_ROLES:
        return render(request, "console/forbidden.html", {"membership": membership}, status=403)
    org = membership.org
    return render(request, "console/reports.html", {
        "membership": membership,
        "org": org,
        "page_config": {"orgName": org.name, "timezone": org.timezone, "today": _org_today(org.timezone).isoformat()},
    })


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f}"


@login_required
def eta_accuracy(request: HttpRequest) -> HttpResponse:
    """How close the day's ETAs came to the actual arrivals: a table per route with bars
    for the mean and p90 absolute error at both horizons (docs/eta.md)."""
    from apps.eta.selectors import eta_accuracy as accuracy

    membership = getattr(request.user, "membership", None)
    if membership is None or membership.role not in CONSOLE_ROLES:
        return render(request, "console/forbidden.html", {"membership": membership}, status=403)
    org = membership.org
    today = _org_today(org.timezone)
    day = _requested_date(request.GET.get("date"), today)
    report = accuracy(org=org, date_from=day, date_to=day)
    rows = [{"label": "All routes", **report["organization"]}] + [
        {"label": f"{r['name']} · {r['driver'] or 'no driver'}", **r} for r in report["routes"]]
    scale = max([s for row in rows for h in ("first", "departure") for s in [row[h]["p90_abs_s"] or 0]] + [60])
    for row in rows:
        for horizon in ("first", "departure"):
            stats = row[horizon]
            stats["mean_min"], stats["p90_min"] = _minutes(stats["mean_abs_s"]), _minutes(stats["p90_abs_s"])
            stats["mean_pct"] = round(100 * (stats["mean_abs_s"] or 0) / scale, 1)
            stats["p90_pct"] = round(100 * (stats["p90_abs_s"] or 0) / scale, 1)
    return render(request, "console/eta_accuracy.html", {
        "membership": membership, "org": org, "date": day, "rows": rows, "scale_min": _minutes(scale)})
