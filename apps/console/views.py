from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("console")
    return redirect("login")


@login_required
def console(request: HttpRequest) -> HttpResponse:
    membership = getattr(request.user, "membership", None)
    return render(request, "console/console.html", {"membership": membership})
