from __future__ import annotations

from django import forms


class SignupForm(forms.Form):
    """Extra field on allauth's sign-up form: the first organisation's name."""

    organization_name = forms.CharField(max_length=100, required=False)

    def signup(self, request, user) -> None:
        from organizations.memberships import create_organization

        name = self.cleaned_data.get("organization_name") or f"{user.email.split('@')[0]}'s team"
        create_organization(name=name, owner=user)
