"""A district's roster policy: how its PowerSchool roster becomes Canvas's (conversion.services.roster.Policy).

One row per district, made with the defaults the first time it is read; consultants change it on the district
page and every change is audited (conversion.roster_rules)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from conversion import roster_rules as r


def _choices(values):
    return [(v, v.replace("_", " ")) for v in values]


def validate_role_map(value) -> None:
    if not isinstance(value, dict):
        raise ValidationError("The role table maps PowerSchool roles to Canvas roles.")
    for role, canvas_role in value.items():
        if role not in r.TEACHER_ROLES:
            raise ValidationError(f"{role!r} is not a PowerSchool section role ({', '.join(r.TEACHER_ROLES)}).")
        if canvas_role not in r.CANVAS_ROLES:
            raise ValidationError(f"{canvas_role!r} is not a Canvas role ({', '.join(r.CANVAS_ROLES)}).")


class RosterPolicy(models.Model):
    district = models.OneToOneField("conversion.District", on_delete=models.CASCADE, related_name="roster_policy")
    departed_status = models.CharField(
        max_length=16,
        choices=_choices(r.DEPARTED_STATUSES),
        default=r.Policy.departed_status,
        help_text="What a student who left before the term's end becomes in Canvas.",
    )
    drop_status = models.CharField(
        max_length=16,
        choices=_choices(r.DROP_STATUSES),
        default=r.Policy.drop_status,
        help_text="What Canvas makes of an enrollment missing from a nightly import (diffing_drop_status).",
    )
    role_map = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_role_map],
        help_text="PowerSchool section role → Canvas role; missing roles take the default.",
    )
    course_grouping = models.CharField(
        max_length=16, choices=_choices(r.COURSE_GROUPINGS), default=r.Policy.course_grouping
    )
    course_id_pattern = models.CharField(max_length=200, default=r.Policy.course_id_pattern)
    login_rule = models.CharField(max_length=16, choices=_choices(r.LOGIN_RULES), default=r.Policy.login_rule)
    login_pattern = models.CharField(max_length=200, blank=True, default="")
    staff_login_rule = models.CharField(
        max_length=16, choices=_choices(r.LOGIN_RULES[:-1]), default=r.Policy.staff_login_rule
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Roster policy of {self.district}"

    def clean(self) -> None:
        unknown = r.pattern_fields(self.course_id_pattern) - set(r.COURSE_ID_FIELDS)
        if unknown:
            raise ValidationError(
                {
                    "course_id_pattern": f"Unknown field(s) {', '.join(sorted(unknown))}; use "
                    f"{', '.join(r.COURSE_ID_FIELDS)}."
                }
            )
        if (
            self.course_grouping == "section"
            and "section_local_id" not in r.pattern_fields(self.course_id_pattern)
            and "section_dcid" not in r.pattern_fields(self.course_id_pattern)
        ):
            raise ValidationError(
                {
                    "course_id_pattern": "One course per section needs {section_local_id} or "
                    "{section_dcid} in the course id."
                }
            )
        if self.course_grouping == "combined" and {"section_local_id", "section_dcid"} & r.pattern_fields(
            self.course_id_pattern
        ):
            raise ValidationError(
                {
                    "course_id_pattern": "Combined courses hold several sections: the course id "
                    "cannot name one section (e.g. crs_{course_code}_{term_code}_"
                    "{teacher_local_id})."
                }
            )
        if self.login_rule == "pattern":
            fields = r.pattern_fields(self.login_pattern)
            if not fields or fields - set(r.LOGIN_FIELDS):
                raise ValidationError(
                    {
                        "login_pattern": "A pattern such as {local_id}@students.example.org, with "
                        f"fields among {', '.join(r.LOGIN_FIELDS)}."
                    }
                )

    def as_policy(self) -> r.Policy:
        return r.Policy(
            departed_status=self.departed_status,
            drop_status=self.drop_status,
            role_map={**r.DEFAULT_ROLE_MAP, **(self.role_map or {})},
            course_grouping=self.course_grouping,
            course_id_pattern=self.course_id_pattern,
            login_rule=self.login_rule,
            login_pattern=self.login_pattern,
            staff_login_rule=self.staff_login_rule,
        )

    @classmethod
    def for_district(cls, district) -> r.Policy:
        """The district's policy as plain data; the defaults when it never set one."""
        row = cls.objects.filter(district=district).first()
        return row.as_policy() if row else r.Policy()
