from __future__ import annotations

import pytest

from llm.catalog import get_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    from accounts.models import User

    return User.objects.create_superuser("staff@gateway.test", "pw")


def test_staff_see_models_prices_and_providers(client, staff):
    client.force_login(staff)
    page = client.get("/admin/catalogue/").content.decode()
    model = next(iter(get_catalog().models.values()))
    assert model.id in page and model.upstream in page
    assert "anthropic" in page and "cheapest" in page


def test_others_are_sent_to_the_admin_login(client, owner):
    client.force_login(owner)
    response = client.get("/admin/catalogue/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_reload_keeps_the_catalogue_in_force_when_the_file_is_broken(
    client, staff, tmp_path, monkeypatch
):
    client.force_login(staff)
    before = get_catalog()
    broken = tmp_path / "models.yaml"
    broken.write_text("providers: [oops\n")
    monkeypatch.setenv("GATEWAY_MODELS_CONFIG", str(broken))
    response = client.post("/admin/catalogue/", follow=True)
    assert "Not reloaded" in response.content.decode()
    assert get_catalog() is before
