"""Scale-out: the state on a three-node Redis Cluster, keys placed by hash tag.

The tests imported below run here a second time, with the application's state
(and Dramatiq's Redis broker, for those that start a worker) on the cluster
instead of one server: pipelines, transactions, Lua scripts, scans and the
broker must all keep to one hash slot at a time. The Procfile's processes on the
cluster and on RabbitMQ are in test_processes.py.
"""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from outreach.store.keys import Keys, send_id_for

from .helpers import at, deliver_due, ingest, plan_send
from .test_handover import (  # noqa: F401 - collected again here
    test_a_cancel_after_the_lease_of_a_hand_over_was_reaped_ends_the_send,
    test_a_channel_opt_out_mid_batch_falls_through_to_the_next_channel,
    test_a_consent_withdrawal_mid_batch_stops_the_customers_remaining_sends,
    test_a_send_cancelled_while_its_batch_is_handed_over_never_reaches_the_provider,
    test_a_send_found_suppressed_at_the_gate_is_not_reported_as_handed_over,
    test_an_address_suppressed_mid_batch_is_not_used,
    test_another_attempts_outcome_leaves_a_slow_hand_over_marked,
    test_concurrent_profile_syncs_and_consent_changes_lose_no_opt_out,
    test_do_not_contact_and_erasure_mid_batch_stop_what_is_left,
    test_retry_after_counts_from_the_failure_to_the_millisecond,
)
from .test_inbox import (  # noqa: F401
    test_a_lost_event_is_queued_again_one_lease_after_it_was_accepted,
    test_an_event_never_applied_is_given_up_to_the_dead_letters,
)
from .test_metrics import test_metrics_after_a_few_deliveries  # noqa: F401 - collected again here
from .test_pipeline import (  # noqa: F401
    test_customer_who_moved_zone_is_replanned_at_fire_time,
    test_exit_cancels_remaining_steps_even_a_claimed_one,
    test_full_flow_through_dramatiq,
    test_newer_delay_notice_supersedes_a_pending_one_even_claimed,
    test_transient_failure_retries_through_the_schedule,
    test_two_pumps_racing_claim_each_send_once,
    test_worker_killed_after_claim_is_recovered_by_lease_expiry_once,
)
from .test_policy import (  # noqa: F401
    test_consent_withdrawn_while_a_send_is_claimed,
    test_erase_while_sends_are_in_flight,
    test_export_has_everything,
    test_survey_fatigue,
    test_two_workers_racing_for_the_last_slot,
)
from .test_report import test_schedule_depth_counts_each_utc_day_at_its_edges  # noqa: F401
from .test_schedule_layout import (  # noqa: F401
    test_a_batch_sends_again_only_the_scripts_that_met_no_script,
    test_claim_gives_the_send_its_own_hash_and_the_event_leaves_with_its_last_send,
)
from .test_scheduler_and_recurring import test_recurring_checkin_reads_only_due_entries_of_the_index  # noqa: F401
from .test_web_pages import (  # noqa: F401
    amelia,
    test_answer_link_records_the_score_and_another_click_updates_it,
    test_erased_customer_gets_410,
    web,
)

pytestmark = pytest.mark.redis_server


@pytest.fixture(params=["cluster"])
def backend(request) -> str:
    """Every test of this module runs on the cluster."""
    return request.param


def test_every_key_of_a_customer_and_its_sends_shares_one_slot():
    keys = Keys("outreach:", shards=16)
    for customer_id in ("c-42", "ana@example.com", "客户-7", "{odd}"):
        send_id = send_id_for("event-1", "onboarding", "welcome", customer_id)
        shard = keys.shard_of(customer_id)
        names = [
            keys.customer(customer_id), keys.consent_log(customer_id), keys.planned(customer_id),
            keys.open_sends(customer_id), keys.customer_sends(customer_id), keys.erased(customer_id),
            keys.do_not_contact(customer_id), keys.cap(customer_id, "lifecycle", "2026-03-20"),
            keys.fatigue(customer_id), keys.supersede("order_delay", customer_id, "A-1"),
            keys.answers(customer_id), keys.send(send_id), keys.send_log(send_id), keys.cap_slot(send_id),
            keys.answer(send_id), keys.due(shard), keys.inflight(shard), keys.claim_seq(shard),
            keys.outcomes(shard), keys.shard_stats(shard), keys.customers(shard),
            keys.recurring(shard, "checkin"), keys.answers_index(shard), keys.inbox(shard),
            keys.inbox_events(shard), keys.inbox_tries(shard),
        ]  # fmt: skip
        assert {key_slot(name.encode()) for name in names} == {key_slot(keys.tag(shard).encode())}


def test_the_shards_spread_over_every_node(client):
    keys = Keys("outreach:", shards=16)
    nodes = {client.get_node_from_key(keys.tag(shard)).name for shard in range(keys.shards)}
    assert len(nodes) == 3


def test_a_pump_claims_across_shards_on_every_node(app, clock):
    due = at("2026-03-20T05:00:00Z")
    planned = {plan_send(app, f"e{i}", due, f"c{i}") for i in range(200)}
    assert len({app.keys.shard_of(f"c{i}") for i in range(200)}) == app.keys.shards
    claims = app.schedule.claim(150)
    assert len(claims) == 150 and {c.send_id for c in claims} <= planned
    # The rest in a second pump; nothing twice.
    rest = app.schedule.claim(150)
    assert {c.send_id for c in claims} | {c.send_id for c in rest} == planned


def test_ingest_and_deliver_in_process_on_the_cluster(app, customers, clock):
    result = ingest(app, "order.delayed", "c-jonas", "2026-03-20T06:00:00Z", id="o1",
                    data={"order_id": "A-1", "new_eta": "2026-03-24"})  # fmt: skip
    [send_id] = result.planned
    assert [o.state for o in deliver_due(app)] == ["delivered"]
    assert app.schedule.get(send_id).state == "delivered"
    assert app.stats()["sends:delivered:ok"] == 1
