"""Forms of the organisation pages: API keys, invitations, roles and settings; and the first
organisation's name on allauth's sign-up form."""

from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone

from llm.catalog import get_catalog
from organizations.memberships import create_organization
from organizations.models import Organization
from organizations.roles import Role

MAX_CACHE_TTL = 30 * 24 * 3600


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Say where it is used, e.g. “production”.")
    expires_on = forms.DateField(
        required=False,
        label="Expires on (UTC)",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: never expires.",
    )
    rate_limit_per_minute = forms.IntegerField(
        required=False, min_value=1, label="Requests per minute", help_text="Empty: the plan's."
    )
    rate_limit_per_hour = forms.IntegerField(
        required=False, min_value=1, label="Requests per hour", help_text="Empty: the plan's."
    )
    rate_limit_per_day = forms.IntegerField(
        required=False, min_value=1, label="Requests per day", help_text="Empty: the plan's."
    )
    tokens_per_minute = forms.IntegerField(
        required=False, min_value=1, label="Tokens per minute", help_text="Empty: the plan's."
    )
    monthly_budget_usd = forms.DecimalField(
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        label="Monthly budget (USD)",
        help_text="Empty: no budget for this key.",
    )

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day is not None and day <= timezone.now().date():
            raise forms.ValidationError("Choose a date after today.")
        return day

    def key_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        day = data.pop("expires_on")
        data["expires_at"] = (
            datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone()) if day else None
        )
        return data


class InvitationForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class OrganizationSettingsForm(forms.ModelForm):
    class Meta:
        model = Organization
        fields = [
            "name",
            "default_route_alias",
            "cache_enabled",
            "cache_ttl_seconds",
            "prompt_logging",
        ]
        labels = {
            "name": "Organization name",
            "default_route_alias": "Default model or alias",
            "cache_enabled": "Serve repeated requests from the response cache",
            "cache_ttl_seconds": "Cache lifetime (seconds)",
            "prompt_logging": "Keep prompt text with each request (shown in the request log)",
        }
        help_texts = {
            "default_route_alias": "Used when a request names no model.",
            "cache_enabled": "",
            "cache_ttl_seconds": "Empty: the gateway's default.",
            "prompt_logging": "Redacted; off by default.",
        }
        widgets = {"default_route_alias": forms.TextInput(attrs={"list": "route-names"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.route_names = get_catalog().names()
        self.fields["cache_ttl_seconds"].widget.attrs.update(min=1, max=MAX_CACHE_TTL)

    def clean_default_route_alias(self) -> str:
        name = self.cleaned_data["default_route_alias"].strip()
        if name and name not in self.route_names:
            raise forms.ValidationError(f"{name!r} is not a model or alias of the catalogue.")
        return name

    def clean_cache_ttl_seconds(self):
        ttl = self.cleaned_data["cache_ttl_seconds"]
        if ttl is not None and not 1 <= ttl <= MAX_CACHE_TTL:
            raise forms.ValidationError(f"Choose 1 to {MAX_CACHE_TTL} seconds (30 days).")
        return ttl


class SignupForm(forms.Form):
    """Extra field on allauth's sign-up form: the first organisation's name."""

    organization_name = forms.CharField(max_length=100, required=False)

    def signup(self, request, user) -> None:
        name = self.cleaned_data.get("organization_name") or f"{user.email.split('@')[0]}'s team"
        create_organization(name=name, owner=user)
