"""A whole provisioning run: events, order statuses, errors collected, the outcome."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import trio.testing

from sidecar.declaration.model import (
    CustomDataSpec,
    CustomFieldSpec,
    DataSourceSpec,
    EventSpec,
    OrderStatusSpec,
    ProvisioningPlan,
)
from sidecar.shopimind.client import ShopimindApi
from sidecar.shopimind.provisioning import ProvisioningOutcome, provision
from sidecar.testing.shopimind_api import FakeShopimind

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)

FULL_PLAN = ProvisioningPlan(
    data_sources=(DataSourceSpec(key="main", label="Main", type="pos"),),
    custom_data=(
        CustomDataSpec(name="Visits", fields=(CustomFieldSpec(name="at", type="datetime"),)),
    ),
    events=(
        EventSpec(
            code_name="visit",
            name={"fr": "Visite", "en": "Visit"},
            properties=({"name": "shop", "type": "text"},),
        ),
        EventSpec(code_name="purchase", name="Purchase"),
    ),
    order_statuses=(
        OrderStatusSpec(status_id=1, lang="fr", name="Payée"),
        OrderStatusSpec(status_id="2", lang="en", name="Gone", is_deleted=True),
    ),
)


async def test_events_are_created_and_an_existing_one_is_fine(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.add_event("purchase")
    outcome = await provision(api, ProvisioningPlan(events=FULL_PLAN.events))
    assert outcome.errors == ()
    assert outcome.events == 2
    assert [r.json for r in fake.requests_to("events")] == [
        {
            "code_name": "visit",
            "name": {"fr": "Visite", "en": "Visit"},
            "properties": [{"name": "shop", "type": "text"}],
        },
        {"code_name": "purchase", "name": "Purchase"},
    ]


async def test_a_refused_event_is_an_error_with_the_api_message(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    plan = ProvisioningPlan(events=(EventSpec(code_name="", name="x"), *FULL_PLAN.events))
    outcome = await provision(api, plan)
    assert outcome.events == 2
    assert outcome.errors == (
        "event '': ShopiMind POST /v1/events failed: HTTP 400 Bad Request: "
        "code_name should not be empty",
    )


async def test_order_statuses_are_one_bulk_save_with_defaults(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    plan = ProvisioningPlan(order_statuses=FULL_PLAN.order_statuses)
    outcome = await provision(api, plan, clock=lambda: NOW)
    assert outcome.order_statuses == 2
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "orders-statuses")
    stamp = "2026-11-26T09:30:00.000Z"
    assert request.json == [
        {"status_id": 1, "lang": "fr", "name": "Payée", "is_deleted": False,
         "created_at": stamp, "updated_at": stamp},
        {"status_id": "2", "lang": "en", "name": "Gone", "is_deleted": True,
         "created_at": stamp, "updated_at": stamp},
    ]  # fmt: skip


async def test_rejected_order_statuses_are_an_error(api: ShopimindApi, fake: FakeShopimind) -> None:
    fake.reject_when(lambda resource, item: "unknown language" if item["lang"] == "en" else None)
    outcome = await provision(api, ProvisioningPlan(order_statuses=FULL_PLAN.order_statuses))
    assert outcome.order_statuses == 1
    assert outcome.errors == ("order statuses: 1 rejected (2/en: unknown language)",)


async def test_a_full_plan_converges_and_is_idempotent(
    api: ShopimindApi, fake: FakeShopimind
) -> None:
    first = await provision(api, FULL_PLAN)
    assert first.errors == ()
    assert first.provisioned == 1 + 1 + 2 + 2
    second = await provision(api, FULL_PLAN)
    assert second.to_state() == first.to_state()
    assert len(fake.data_sources) == len(fake.definitions) == 1


async def test_errors_are_collected_per_resource_and_the_plan_goes_on(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.fail_next(1, status=403, path="data-sources")
    fake.fail_next(1, status=500, path="events", method="POST")  # a POST: not replayed
    outcome = await provision(api, FULL_PLAN)
    assert outcome.source_ids == {}
    assert list(outcome.def_ids) == ["Visits"]
    assert (outcome.events, outcome.order_statuses) == (1, 2)
    assert outcome.provisioned == 4
    assert [error.split(":")[0] for error in outcome.errors] == ["data sources", "event 'visit'"]
    assert "HTTP 500 Internal Server Error: injected fault" in outcome.errors[1]


async def test_nothing_provisioned_when_everything_fails(
    mock_clock: trio.testing.MockClock, api: ShopimindApi, fake: FakeShopimind
) -> None:
    fake.tokens.clear()
    outcome = await provision(api, FULL_PLAN)
    assert outcome.provisioned == 0
    assert len(outcome.errors) == 5  # sources listing, definitions listing, 2 events, statuses
    assert all("HTTP 401 Unauthorized" in error for error in outcome.errors)


async def test_an_unexpected_crash_in_one_resource_does_not_abort_the_plan(
    api: ShopimindApi, fake: FakeShopimind, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ShopimindApi.create_event

    async def flaky(self: ShopimindApi, event: object) -> bool:
        if event["code_name"] == "visit":  # type: ignore[index]
            raise RuntimeError("bug")
        return await original(self, event)  # type: ignore[arg-type]

    monkeypatch.setattr(ShopimindApi, "create_event", flaky)
    outcome = await provision(api, ProvisioningPlan(events=FULL_PLAN.events))
    assert outcome.events == 1
    assert outcome.errors == ("event 'visit': unexpected RuntimeError: bug",)


def test_the_outcome_is_a_replaceable_value() -> None:
    outcome = ProvisioningOutcome(source_ids={"main": 3}, def_ids={"Visits": "9"}, events=1)
    assert outcome.provisioned == 3
    assert outcome.to_state() == {"sourceIds": {"main": 3}, "defIds": {"Visits": "9"}}
    replaced = dataclasses.replace(outcome, errors=("dynamic plan: bad",))
    assert replaced.errors == ("dynamic plan: bad",)
    assert replaced.source_ids == {"main": 3}
