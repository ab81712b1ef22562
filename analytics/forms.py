"""Filters of the dashboard's analytics and request log (query-string forms)."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from analytics.dashboard_queries import Period
from llm.catalog import get_catalog
from organizations.models import ApiKey, Organization

MAX_DAYS = 366
STATUS_CHOICES = [
    ("", "Any status"),
    ("2xx", "Succeeded (2xx)"),
    ("error", "Failed (not 2xx)"),
    ("4xx", "Client errors (4xx)"),
    ("5xx", "Server errors (5xx)"),
]


class UsageFilterForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    model = forms.CharField(
        required=False,
        max_length=100,
        label="Model or alias",
        widget=forms.TextInput(attrs={"list": "model-names"}),
    )
    provider = forms.ChoiceField(required=False)
    key = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="API key")

    def __init__(self, org: Organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        catalog = get_catalog()
        self.fields["provider"].choices = [("", "All providers")] + [
            (p, catalog.providers[p].name) for p in sorted(catalog.providers)
        ]
        keys = ApiKey.objects.for_org(org).only("id", "name", "public_id")
        self.key_names = {k.pk: k.name for k in keys}
        self.fields["key"].choices = [("", "All keys")] + [
            (pk, name) for pk, name in self.key_names.items()
        ]
        self.model_names = catalog.names()

    def clean(self):
        data = super().clean()
        today = timezone.now().date()
        end = data.get("end") or today
        start = data.get("start") or end - timedelta(days=29)
        if start > end:
            self.add_error("start", "The start must be on or before the end.")
        elif (end - start).days >= MAX_DAYS:
            self.add_error("start", f"Choose a range of at most {MAX_DAYS} days.")
        data["start"], data["end"] = start, end
        return data

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {name: data[name] for name in ("model", "provider", "key") if data.get(name)}


class RequestFilterForm(UsageFilterForm):
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    before = forms.CharField(required=False, widget=forms.HiddenInput)

    def period(self):
        """The dates asked for, if any: the log shows every request otherwise."""
        if not (self.data.get("start") or self.data.get("end")):
            return None
        return Period(self.cleaned_data["start"], self.cleaned_data["end"])

    def filters(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        names = ("model", "provider", "key", "status")
        return {name: data[name] for name in names if data.get(name) not in (None, "")}
