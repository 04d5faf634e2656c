"""The integrations page of the console: the inbound attention queue and the outbound
delivery log. Server-rendered shell; the data comes from the REST API."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.models import Role
from apps.accounts.roles import ROLE_SCOPES

CONSOLE_ROLES = (Role.ADMIN, Role.DISPATCHER)


@login_required
def integrations_page(request: HttpRequest) -> HttpResponse:
    membership = getattr(request.user, "membership", None)
    if membership is None or membership.role not in CONSOLE_ROLES:
        return render(request, "console/forbidden.html", {"membership": membership}, status=403)
    scopes = ROLE_SCOPES[membership.role]
    return render(request, "integrations/console.html", {
        "membership": membership,
        "org": membership.org,
        "page_config": {"orgName": membership.org.name, "timezone": membership.org.timezone,
                        "canReplay": "webhooks:write" in scopes},
    })
