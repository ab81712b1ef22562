"""The alert recipients form of the settings page."""

from __future__ import annotations

from django import forms
from django.core.validators import validate_email

from analytics.models import AlertSettings


class AlertSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label="Alert webhook URL",
        help_text="Receives each alert as a JSON POST.",
    )

    class Meta:
        model = AlertSettings
        fields = ["emails", "webhook_url"]
        labels = {"emails": "Alert e-mail recipients", "webhook_url": "Alert webhook URL"}
        widgets = {"emails": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "emails": "One address per line or comma-separated. Empty: the owners and admins.",
        }

    def clean_emails(self) -> str:
        text = self.cleaned_data["emails"]
        addresses = [e.strip() for e in text.replace(",", "\n").splitlines() if e.strip()]
        for address in addresses:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an e-mail address.") from None
        return "\n".join(addresses)
