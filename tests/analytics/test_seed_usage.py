from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from analytics.models import Frequency, UsageRecord, UsageRollup
from analytics.rollups import get_fill_end

pytestmark = pytest.mark.django_db


def test_seeding_writes_records_and_rolls_them_up(org, api_key, other_org):
    call_command("seed_usage", org.slug, records=300, days=3, batch=100)
    rows = UsageRecord.objects.filter(organization=org)
    assert rows.count() == 300
    assert not UsageRecord.objects.filter(organization=other_org).exists()
    assert set(rows.values_list("api_key_id", flat=True)) == {api_key[0].pk}
    mark = get_fill_end()
    for frequency in (Frequency.HOUR, Frequency.DAY):
        rolled = UsageRollup.objects.filter(organization=org, frequency=frequency)
        # Every hour before the roll-up mark is in the roll-ups; later records are read raw.
        assert rolled.aggregate(n=Sum("requests"))["n"] == rows.filter(created_at__lt=mark).count()
    assert rows.filter(created_at__lt=mark).count() > 250


def test_seeding_an_unknown_organisation_says_so(db):
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        call_command("seed_usage", "nope", records=1)
