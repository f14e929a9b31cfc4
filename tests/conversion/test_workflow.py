"""The workflow's rules: each illegal move is refused with a reason a person can act on."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conversion import workflow
from conversion.models import (
    Approval,
    ApprovalKind,
    AuditEvent,
    ConversionState,
    GpbState,
    Job,
    JobKind,
    JobState,
    MappingDiff,
    Snapshot,
    SnapshotState,
)
from conversion.workflow import TransitionRefused, perform
from tests.conversion.conftest import fill_step_one

S = ConversionState


def refused(conversion, name, user, **kw) -> str:
    with pytest.raises(TransitionRefused) as info:
        perform(conversion, name, user=user, **kw)
    return str(info.value)


def finished_job(conversion, kind, state=JobState.SUCCEEDED, **detail):
    return Job.objects.create(conversion=conversion, kind=kind, state=state, finished_at=timezone.now(), detail=detail)


def complete_snapshot(conversion):
    return Snapshot.objects.create(
        conversion=conversion, state=SnapshotState.COMPLETE, completed_at=timezone.now(), fingerprint="f" * 64
    )


def test_step_one_needs_zis_details_and_checklist(conversion, district_admin):
    message = refused(conversion, "confirm_agent_setup", district_admin)
    assert "ZIS URL is missing" in message
    assert "Zone ID is missing" in message
    assert "Messaging mode is Pull" in message


def test_district_admin_confirms_agent_setup_with_an_audited_approval(conversion, district_admin):
    fill_step_one(conversion)
    perform(conversion, "confirm_agent_setup", user=district_admin, reason="Agent restarted, zone ready")
    assert conversion.state == S.CONNECTION
    approval = Approval.objects.get(conversion=conversion)
    assert approval.kind == ApprovalKind.AGENT_READY and approval.approved_by == district_admin
    event = AuditEvent.objects.get(conversion=conversion, action="confirm_agent_setup")
    assert (event.actor, event.from_state, event.to_state) == (district_admin, S.AGENT_SETUP, S.CONNECTION)
    assert event.reason == "Agent restarted, zone ready"


def test_consultant_cannot_approve_for_the_district(conversion, consultant):
    fill_step_one(conversion)
    assert "Only a district admin of this district can do this" in refused(
        conversion, "confirm_agent_setup", consultant
    )
    assert conversion.state == S.AGENT_SETUP


def test_admin_of_another_district_has_no_role_here(conversion, other_admin):
    fill_step_one(conversion)
    assert "Only a district admin" in refused(conversion, "confirm_agent_setup", other_admin)


def test_moves_from_the_wrong_state_are_refused(conversion, consultant):
    message = refused(conversion, "go_live", consultant)
    assert "is not a next step" in message


def test_unknown_action_is_refused(conversion, consultant):
    assert "no step action called" in refused(conversion, "launch_rockets", consultant)


def test_pull_verification_needs_a_passed_test_and_a_complete_pull(conversion, district_admin):
    conversion.state = S.CONNECTION
    conversion.save()
    message = refused(conversion, "verify_pull", district_admin)
    assert "connection test has not passed" in message and "No complete pull" in message
    finished_job(conversion, JobKind.TEST_CONNECTION, JobState.FAILED)
    complete_snapshot(conversion)
    assert "connection test has not passed" in refused(conversion, "verify_pull", district_admin)
    finished_job(conversion, JobKind.TEST_CONNECTION)
    perform(conversion, "verify_pull", user=district_admin)
    approval = Approval.objects.get(kind=ApprovalKind.PULL_VERIFIED)
    assert approval.subject.startswith("snapshot:") and approval.fingerprint == "f" * 64


def test_pause_waits_for_the_pause_date_in_the_district_time_zone(conversion, consultant):
    conversion.state = S.PAUSE
    conversion.pause_date = workflow.local_today(conversion) + dt.timedelta(days=1)
    conversion.save()
    assert "has not come yet" in refused(conversion, "pause_legacy_sync", consultant)
    conversion.pause_date = workflow.local_today(conversion)
    conversion.save()
    perform(conversion, "pause_legacy_sync", user=None)  # the scheduler
    assert conversion.state == S.MAPPING and conversion.legacy_sync_paused_at is not None
    assert AuditEvent.objects.get(action="pause_legacy_sync").actor_label == "worker"


def test_default_pause_date_is_may_31_of_the_school_year(conversion):
    assert conversion.effective_pause_date == dt.date(2027, 5, 31)


def test_district_admin_cannot_pause(conversion, district_admin):
    conversion.state = S.PAUSE
    conversion.pause_date = dt.date(2000, 1, 1)
    conversion.save()
    assert "Only" in refused(conversion, "pause_legacy_sync", district_admin)


def test_mapping_approval_is_tied_to_the_current_diff(conversion, district_admin):
    conversion.state = S.MAPPING
    conversion.save()
    assert "No mapping check" in refused(conversion, "approve_mapping", district_admin)
    snapshot = complete_snapshot(conversion)
    diff = MappingDiff.objects.create(conversion=conversion, snapshot=snapshot, blocking_count=2, fingerprint="a" * 64)
    assert "2 conflicting" in refused(conversion, "approve_mapping", district_admin)
    diff.blocking_count = 0
    diff.save()
    # New data (a newer snapshot) makes the old diff stale: it can no longer be approved.
    complete_snapshot(conversion)
    assert "No mapping check" in refused(conversion, "approve_mapping", district_admin)
    fresh = MappingDiff.objects.create(
        conversion=conversion, snapshot=Snapshot.objects.latest_complete(conversion), fingerprint="b" * 64
    )
    perform(conversion, "approve_mapping", user=district_admin)
    assert Approval.objects.get(kind=ApprovalKind.MAPPING).subject == f"mapping_diff:{fresh.pk}"


def test_remap_must_be_verified(conversion, consultant):
    conversion.state = S.REMAPPING
    conversion.save()
    assert "has not completed" in refused(conversion, "complete_remap", consultant)
    finished_job(conversion, JobKind.REMAP, unverified=3)
    assert "3 Canvas user(s) still lack" in refused(conversion, "complete_remap", consultant)
    finished_job(conversion, JobKind.REMAP, unverified=0)
    perform(conversion, "complete_remap", user=consultant)
    assert conversion.state == S.GO_LIVE


def test_go_live_needs_the_date(conversion, consultant):
    conversion.state = S.GO_LIVE
    conversion.save()
    assert "No go-live date" in refused(conversion, "go_live", consultant)
    conversion.go_live_date = workflow.local_today(conversion) + dt.timedelta(days=3)
    conversion.save()
    assert "has not come yet" in refused(conversion, "go_live", consultant)
    conversion.go_live_date = workflow.local_today(conversion)
    conversion.save()
    perform(conversion, "go_live", user=consultant)
    assert conversion.state == S.LIVE and conversion.live_since is not None


def test_going_back_needs_a_consultant_and_a_reason(conversion, consultant, district_admin):
    conversion.state = S.MAPPING
    conversion.save()
    assert "reason is required" in refused(conversion, "back_to_connection", consultant)
    assert "Only" in refused(conversion, "back_to_connection", district_admin, reason="x")
    perform(conversion, "back_to_connection", user=consultant, reason="Zone moved to a new ZIS")
    assert conversion.state == S.CONNECTION
    assert "is not a next step" in refused(conversion, "back_to_mapping", consultant, reason="forward is not back")


def test_live_conversions_cannot_be_sent_back(conversion, consultant):
    conversion.state = S.LIVE
    conversion.save()
    assert "is not a next step" in refused(conversion, "back_to_agent_setup", consultant, reason="oops")


def test_grade_passback_track(conversion, consultant, district_admin):
    assert "Choose the gradebook" in refused(conversion, "request_gpb", district_admin)
    conversion.gradebook = "ptp"
    conversion.save()
    perform(conversion, "request_gpb", user=district_admin)
    assert conversion.gpb_state == GpbState.PLUGIN_PENDING
    assert "Only a district admin" in refused(conversion, "confirm_plugin_installed", consultant)
    perform(conversion, "confirm_plugin_installed", user=district_admin)
    assert "must be verified" in refused(conversion, "enable_gpb", consultant)
    conversion.state = S.PAUSE  # roster sync paused: grade passback may still be enabled and run
    conversion.save()
    perform(conversion, "enable_gpb", user=consultant)
    assert conversion.gpb_state == GpbState.ENABLED
    assert conversion.state == S.PAUSE


def test_next_actions_explain_blockers_for_each_role(conversion, consultant, district_admin):
    admin_actions = {a.transition.name: a for a in workflow.next_actions(conversion, district_admin)}
    assert set(admin_actions) == {"confirm_agent_setup", "request_gpb"}
    assert not admin_actions["confirm_agent_setup"].allowed
    assert any("ZIS URL" in p for p in admin_actions["confirm_agent_setup"].problems)
    consultant_actions = {a.transition.name for a in workflow.next_actions(conversion, consultant)}
    assert "confirm_agent_setup" not in consultant_actions


def test_two_concurrent_moves_cannot_both_happen(conversion, district_admin):
    fill_step_one(conversion)
    perform(conversion, "confirm_agent_setup", user=district_admin)
    stale = type(conversion).objects.get(pk=conversion.pk)
    stale.state = S.AGENT_SETUP  # an old copy of the page still thinks we are at step 1
    message = refused(stale, "confirm_agent_setup", district_admin)
    assert "is not a next step" in message
    assert Approval.objects.filter(kind=ApprovalKind.AGENT_READY).count() == 1
