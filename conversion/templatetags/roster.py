"""`{% roster_policy_of district as policy %}`: the district's roster policy (defaults when never set), and the
form consultants change it with."""

from django import template

from conversion.roster_forms import ROLE_LABELS, RosterPolicyForm
from conversion.services.roster_settings import policy_row

register = template.Library()


@register.simple_tag
def roster_policy_of(district):
    row = policy_row(district)
    policy = row.as_policy()
    return {
        "row": row,
        "policy": policy,
        "form": RosterPolicyForm(instance=row),
        "roles": [(ROLE_LABELS[k], policy.canvas_role(k)) for k in ROLE_LABELS],
    }
