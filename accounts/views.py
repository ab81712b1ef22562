from __future__ import annotations

from django.shortcuts import render

from organizations.tenancy import memberships_of


def home(request):
    context = {}
    if request.user.is_authenticated:
        context["memberships"] = memberships_of(request.user)
    return render(request, "accounts/home.html", context)
