"""The rule tables name their entries (issue 19): each Literal type lists exactly the keys of its table, so a
code, part or actor added to one and not the other fails here (mypy cannot see a table's missing key)."""

from __future__ import annotations

from typing import get_args

from conversion import workflow
from conversion.models import ConversionState, GpbState, Severity
from conversion.models.conversion import STATE_ORDER
from conversion.services import diagnostics, step_data


def test_every_finding_code_has_its_severity_title_and_advice():
    assert set(get_args(diagnostics.FindingCode)) == set(diagnostics.FINDINGS)
    for kind in diagnostics.FINDINGS.values():
        assert isinstance(kind.severity, Severity) and kind.title and kind.advice
    assert set(diagnostics.PROTOCOL_CODES) < set(diagnostics.FINDINGS)


def test_every_editable_part_is_a_part_name():
    assert list(get_args(step_data.Part)) == list(step_data.EDITABLE_PARTS)


def test_the_task_list_walks_the_main_track_in_order_and_step_7_follows_every_gpb_state():
    assert [step.number for step in workflow.STEPS] == [1, 2, 3, 4, 5, 6]
    assert [step.state for step in workflow.STEPS] == list(STATE_ORDER[: STATE_ORDER.index(ConversionState.LIVE)])
    assert set(workflow.GPB_STANDING) == set(GpbState.values)
    assert {s.status for s in workflow.GPB_STANDING.values()} <= set(get_args(workflow.StepStatus))


def test_every_actor_has_its_words_and_every_transition_moves_a_track():
    assert set(get_args(workflow.Actor)) == set(workflow.ACTOR_LABELS)
    for transition in workflow.TRANSITIONS.values():
        assert transition.field in get_args(workflow.Track)
        states = ConversionState.values if transition.field == "state" else GpbState.values
        assert set(transition.sources) | {transition.target} <= set(states)
