"""Grade write-back: GradingAssignment / GradingAssignmentScore events are recorded or refused."""

import datetime as dt
from decimal import Decimal

import httpx

from sifclient.errors import CAT_EVENTS, CAT_XML_VALIDATION
from sifclient.messages import build_event, read_ack, read_message
from sifclient.powerschool import District, DistrictSpec
from sifclient.records import GradingAssignment, GradingAssignmentScore
from sifclient.safexml import parse_message_bytes
from sifclient.zis import ZisSimulator
from tests.sifclient.simhelpers import Capture, new_agent


def assignment_for(district: District, section: int) -> GradingAssignment:
    sec = district.section(section)
    category = district.grading_category(section * 2)
    return GradingAssignment(
        ref_id="ABCDEF0123456789ABCDEF0123456789",
        section_ref_id=sec.ref_id,
        term_ref_id=sec.term_ref_id,
        school_ref_id=category.school_ref_id,
        category_ref_id=category.ref_id,
        description="Essay 1",
        points_possible=20,
        due_date=dt.date(2025, 10, 1),
    )


def test_valid_grades_are_recorded_and_invalid_ones_refused():
    capture = Capture()
    spec = DistrictSpec(students=40)
    district = District(spec)
    with ZisSimulator(spec, on_send=capture) as zis:
        agent = new_agent(zis)
        agent.register()
        assignment = assignment_for(district, 0)
        enrollment = district.section_enrollment(0)
        score = GradingAssignmentScore(
            student_ref_id=enrollment.student_ref_id,
            section_ref_id=assignment.section_ref_id,
            school_ref_id=assignment.school_ref_id,
            assignment_ref_id=assignment.ref_id,
            score_points=18,
            score_percent=Decimal("90.0"),
        )
        orphan = GradingAssignmentScore(
            student_ref_id=enrollment.student_ref_id,
            section_ref_id=assignment.section_ref_id,
            school_ref_id=assignment.school_ref_id,
            assignment_ref_id="F" * 32,
            score_points=1,
        )
        bad_section = GradingAssignment(**{**assignment.__dict__, "section_ref_id": "0" * 32})
        score_first = agent.send_event("GradingAssignmentScore", "Add", [orphan])
        results = agent.send_event("GradingAssignment", "Add", [assignment, bad_section])
        scored = agent.send_event("GradingAssignmentScore", "Change", [score])

        # A fractional ScorePoints cannot be built with the typed record; craft it to test the ZIS.
        raw = build_event("canvas", score, "Change").data.replace(b"<ScorePoints>18<", b"<ScorePoints>17.5<")
        reply = read_ack(read_message(parse_message_bytes(agent.transport.post(raw))).body)

        recorded = zis.grade_write_backs
        over_http = httpx.get(f"{zis.base_url}/_sim/grades").json()
    assert score_first[0].error.category == CAT_EVENTS and "GradingAssignmentRefId" in score_first[0].error.description
    assert results[0].accepted and not results[1].accepted
    assert results[1].error.category == CAT_EVENTS and "SectionInfoRefId" in results[1].error.description
    assert scored[0].accepted
    assert reply.error.category == CAT_XML_VALIDATION and "whole number" in reply.error.description
    assert [(g.object_name, g.action) for g in recorded] == [
        ("GradingAssignment", "Add"),
        ("GradingAssignmentScore", "Change"),
    ]
    assert recorded[0].record == assignment and recorded[1].record == score
    assert [g["object_name"] for g in over_http] == ["GradingAssignment", "GradingAssignmentScore"]
    assert over_http[1]["record"]["score_points"] == 18
    capture.assert_all_valid()


def test_grade_write_backs_survive_a_restart_with_state_dir(tmp_path):
    spec = DistrictSpec(students=10)
    assignment = assignment_for(District(spec), 1)
    with ZisSimulator(spec, state_dir=tmp_path) as zis:
        agent = new_agent(zis)
        agent.register()
        assert agent.send_event("GradingAssignment", "Add", [assignment])[0].accepted
    with ZisSimulator(spec, state_dir=tmp_path) as zis:
        assert [g.record for g in zis.grade_write_backs] == [assignment]


def test_a_delete_removes_the_assignment_and_its_scores_and_a_provided_zone_answers_requests(tmp_path):
    """What the simulated PowerSchool holds: Add/Change store, Delete removes (an assignment's Delete takes its
    scores); with a provider for the grading objects a SIF_Request returns what it holds, else 8/4."""
    from sifclient import SifError
    from sifclient.query import Condition, Query

    spec = DistrictSpec(students=10)
    district = District(spec)
    assignment = assignment_for(district, 0)
    enrollment = district.section_enrollment(0)
    score = GradingAssignmentScore(
        student_ref_id=enrollment.student_ref_id,
        section_ref_id=assignment.section_ref_id,
        school_ref_id=assignment.school_ref_id,
        assignment_ref_id=assignment.ref_id,
        score_points=3,
    )
    query = Query("GradingAssignmentScore", (Condition("@SectionInfoRefId", "EQ", assignment.section_ref_id),))

    def read(agent):
        request_id = agent.request("GradingAssignmentScore", query)
        found = []
        agent.drain(lambda d: found.extend(d.records()) if d.request_msg_id == request_id else None)
        return found

    with ZisSimulator(spec, state_dir=tmp_path) as zis:
        agent = new_agent(zis)
        agent.register()
        assert agent.send_event("GradingAssignment", "Add", [assignment])[0].accepted
        assert agent.send_event("GradingAssignmentScore", "Add", [score])[0].accepted
        refused = None
        try:
            agent.request("GradingAssignmentScore", query)
        except SifError as exc:  # PowerSchool subscribes to them, it does not provide them: 8/4 by default
            refused = exc
        assert refused is not None and "provider" in refused.info.description.lower()
        zis.zone.grading_provider = True
        assert read(agent) == [score]
        assert agent.send_event("GradingAssignment", "Delete", [assignment])[0].accepted
        held = zis.zone.held_grades()
        assert held.assignments == {} and held.scores == {}
        assert read(agent) == []
        # The deleted assignment takes no new score.
        assert not agent.send_event("GradingAssignmentScore", "Add", [score])[0].accepted
    with ZisSimulator(spec, state_dir=tmp_path) as zis:  # the same after a restart
        assert zis.zone.held_grades().assignments == {}
