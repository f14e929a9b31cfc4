"""The district page and what it posts: workflow actions, step data edits, job starts."""

from __future__ import annotations

import functools
import hashlib

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.template import Engine
from django.urls import reverse
from django.utils.cache import get_conditional_response
from django.views.decorators.http import require_GET, require_POST

from conversion import crypto, jobs, workflow
from conversion.models import JobKind, JobState, Snapshot
from conversion.rules import AccessRefused, Role, is_consultant, role_in
from conversion.services import overview, step_data
from conversion.views.access import get_conversion_for_user, get_job_for_user
from conversion.views.types import Request

# The district page's sections: each its own URL (districts/<slug>/<year>/<section>/), the overview at the
# page's own address. (slug, tab label)
SECTIONS: tuple[tuple[str, str], ...] = (
    ("overview", "Overview"),
    ("connection", "Connection"),
    ("pull", "Pull"),
    ("mapping", "Mapping"),
    ("remap", "Remap"),
    ("syncs", "Syncs"),
    ("grade-passback", "Grade passback"),
    ("diagnostics", "Diagnostics"),
    ("audit", "Audit"),
)
SECTION_SLUGS = tuple(slug for slug, _ in SECTIONS)


def _page_context(request: Request, conversion, forms=None, section: str = "overview") -> dict:
    user = request.user
    forms = forms or {}
    role = role_in(user, conversion.district)
    step = workflow.next_step(conversion)
    editable = {
        part: forms.get(part) or step_data.form_for(conversion, part)
        for part in step_data.EDITABLE_PARTS
        if step_data.can_edit(conversion, user, part)
    }
    actions = workflow.next_actions(conversion, user)
    step_action = next((a for a in actions if step.transition and a.transition.name == step.transition.name), None)
    job_problems = workflow.job_problems(conversion, step.job, user) if step.job and role is Role.CONSULTANT else None
    base = reverse("district_year", args=(conversion.district.slug, conversion.school_year))
    context = {
        "conversion": conversion,
        "district": conversion.district,
        "role": role,
        "consultant": is_consultant(user),
        "next": step,
        "next_is_yours": step.is_for(role),
        "next_form": editable.pop(step.part, None) if step.part else None,
        "next_action": step_action,
        "next_job_problems": job_problems,
        "next_job_label": JobKind(step.job).label if step.job else "",
        "back_actions": [a for a in actions if a.transition.name.startswith("back_to_")],
        "gpb_actions": [a for a in actions if a.transition.field == "gpb_state"],
        "waiting_on_district": workflow.waiting_on_district(conversion),
        "active_jobs": conversion.jobs.filter(state__in=(JobState.QUEUED, JobState.RUNNING)).select_related(
            "requested_by"
        )[:5],
        "forms": editable,
        "section": section,
        "tabs": [(slug, label, base if slug == "overview" else f"{base}{slug}/") for slug, label in SECTIONS],
        "diagnostic_count": conversion.diagnostics.current().count(),
        "zis_password_masked": crypto.masked(conversion.zis_password),
        "other_years": conversion.district.conversions.exclude(pk=conversion.pk).values_list("school_year", flat=True),
    }
    # What only one section shows is read only for it.
    if section == "overview":
        context.update(
            steps=workflow.step_overview(conversion),
            startable_jobs=workflow.startable_jobs(conversion, user),
            # the running ones are at the top of the page, under the next action
            jobs=conversion.jobs.exclude(state__in=(JobState.QUEUED, JobState.RUNNING)).select_related("requested_by")[
                :10
            ],
        )
    elif section == "connection":
        context.update(connection_job=overview.connection_result(conversion))
    elif section == "pull":
        context.update(
            pull=overview.pull_summary(
                Snapshot.objects.filter(conversion=conversion)
                .exclude(state="receiving")
                .order_by("-created_at", "-id")
                .first()
            )
        )
    elif section == "mapping":
        context.update(mapping=overview.mapping_summary(conversion))
    elif section == "remap":
        context.update(remap=overview.remap_summary(conversion))
    elif section == "syncs":
        context.update(syncs=overview.sync_history(conversion))
    elif section == "audit":
        context.update(
            audit_events=conversion.audit_events.all()[:50],
            approvals=conversion.approvals.select_related("approved_by")[:20],
        )
    return context


@require_GET
def district_page(request: Request, slug: str, year: int | None = None, section: str = "overview") -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    if section not in SECTION_SLUGS:
        raise Http404("No such section.")
    return render(request, "district/district.html", _page_context(request, conversion, section=section))


def _back(request: Request, slug: str, year: int) -> HttpResponse:
    """Back to the page section the form was posted from (its `section` field), else the overview."""
    section = request.POST.get("section", "")
    if section in SECTION_SLUGS and section != "overview":
        return redirect("district_section", slug=slug, year=year, section=section)
    return redirect("district_year", slug=slug, year=year)


@require_POST
def perform_action(request: Request, slug: str, year: int, name: str) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    if name.startswith("back_to_") and request.POST.get("confirm") != "yes":
        messages.error(request, "Going back was not confirmed: tick the confirmation box to reopen the step.")
        return _back(request, slug, year)
    try:
        workflow.perform(conversion, name, user=request.user, reason=request.POST.get("reason", ""))
    except workflow.TransitionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Done: {workflow.TRANSITIONS[name].label}.")
    return _back(request, slug, year)


@require_POST
def edit_part(request: Request, slug: str, year: int, part: str) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    if part not in step_data.EDITABLE_PARTS or not step_data.can_edit(conversion, request.user, part):
        # step_data's table decides by role and by step together (rules.role_in says who the user is).
        raise AccessRefused("You cannot change this part of the conversion now.")
    form = step_data.form_for(conversion, part, data=request.POST)
    if not form.is_valid():
        messages.error(request, "Please correct the errors below.")
        section = request.POST.get("section", "")
        section = section if section in SECTION_SLUGS else "overview"
        return render(
            request, "district/district.html", _page_context(request, conversion, {part: form}, section), status=422
        )
    changed = step_data.save_part(conversion, part, form, request.user)
    messages.success(request, "Saved." if changed else "Nothing changed.")
    return _back(request, slug, year)


@require_POST
def hold_sync(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    held = request.POST.get("held") == "1"
    try:
        workflow.set_nightly_sync_held(conversion, held, user=request.user, reason=request.POST.get("reason", ""))
    except (workflow.TransitionRefused, AccessRefused) as refused:  # the form is on a page district admins see
        messages.error(request, str(refused))
    else:
        conversion.refresh_from_db(fields=["nightly_sync_paused"])
        if conversion.nightly_sync_paused == held:
            messages.success(
                request,
                "The nightly roster sync is held: no sync runs until it is resumed. Grade passback keeps running."
                if held
                else "The nightly roster sync is resumed: the next one runs at midnight Mountain time.",
            )
    return _back(request, slug, year)


@require_POST
def start_job(request: Request, slug: str, year: int, kind: str) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    if kind not in JobKind.values:
        messages.error(request, "There is no such job.")
        return _back(request, slug, year)
    problems = workflow.job_problems(conversion, kind, request.user)
    if kind == JobKind.REMASTER:
        problems = ["Start it from the sync history, with a reason."]
    unsent = jobs.resend_unsent(conversion, kind) if problems == [jobs.ALREADY_ACTIVE] else None
    if unsent is not None:  # queued while the broker was down: this press sends it again
        if unsent.message == jobs.BROKER_DOWN_MESSAGE:
            messages.warning(request, f"{JobKind(kind).label} is queued. {jobs.BROKER_DOWN_MESSAGE}")
        else:
            messages.success(request, f"{JobKind(kind).label} was sent to the workers again.")
        return _back(request, slug, year)
    if not problems:
        try:
            job, _ = jobs.start_job(conversion, kind, user=request.user)
        except jobs.JobAlreadyActive:  # a parallel press won the race: the database refused this one
            problems = [jobs.ALREADY_ACTIVE]
    if problems:
        messages.error(request, f"{JobKind(kind).label} cannot start: " + " ".join(problems))
        if request.htmx:  # the item list is the target: nothing to add there; the page shows the message
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return _back(request, slug, year)
    if request.htmx:
        return _job_item(request, job, conversion)
    # The broker may have refused the message (enqueue_job ran on commit): say what happens then.
    job.refresh_from_db(fields=["message"])
    if job.message == jobs.BROKER_DOWN_MESSAGE:
        messages.warning(request, f"{JobKind(kind).label} queued. {jobs.BROKER_DOWN_MESSAGE}")
    else:
        messages.success(request, f"{JobKind(kind).label} queued.")
    return _back(request, slug, year)


@require_POST
def cancel_job(request: Request, slug: str, year: int, job_id: int) -> HttpResponse:
    """A consultant stops a job: a queued one at once, a running one at its next step (audited)."""
    job = get_job_for_user(request.user, slug, year, job_id)
    outcome = jobs.cancel_job(job, user=request.user, reason=request.POST.get("reason", ""))  # AccessRefused: 403
    if request.htmx:
        return _job_item(request, job, job.conversion)
    messages.success(request, f"{JobKind(job.kind).label}: {outcome}")
    return _back(request, slug, year)


def _job_item(request: Request, job, conversion) -> HttpResponse:
    job.refresh_from_db()
    return render(
        request, "district/_job.html", {"job": job, "conversion": conversion, "consultant": is_consultant(request.user)}
    )


@require_GET
def job_partial(request: Request, slug: str, year: int, job_id: int) -> HttpResponse:
    """One job's progress; what its item polls every 2 s while the job runs.

    Answered with an ETag of everything the item shows, so a browser that already has this version
    (If-None-Match, which it sends by itself for the htmx poll) gets 304 Not Modified without the item being
    rendered again, and htmx swaps in the copy it has. `private, no-cache`: kept by the browser only, and
    asked for again on every poll.
    """
    job = get_job_for_user(request.user, slug, year, job_id)
    polling = bool(request.GET.get("polling"))
    etag = job_etag(job, polling, is_consultant(request.user))
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = render(
            request,
            "district/_job.html",
            {"job": job, "conversion": job.conversion, "consultant": is_consultant(request.user)},
        )
        if job.is_finished and polling:
            # The page refreshes the parts a finished job changes (step state, results).
            response["HX-Trigger"] = "job-finished"
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    return response


@functools.cache
def _job_template_digest() -> str:
    """The job item's template source, so that a changed template never matches an old ETag."""
    source = Engine.get_default().get_template("district/_job.html").source
    return hashlib.blake2b(source.encode(), digest_size=8).hexdigest()


def job_etag(job, polling: bool, consultant: bool = False) -> str:
    """A strong ETag of what the job partial shows: every field _job.html reads and whether the answer carries
    HX-Trigger. A running job's elapsed time is not among them: the browser ticks it from started_at."""
    shown = (
        job.pk,
        job.kind,
        job.state,
        job.current,
        job.total,
        job.message,
        job.detail,
        job.error,
        consultant,
        job.traceback if consultant else None,
        job.cancel_requested_at,
        job.requested_by.get_username() if job.requested_by_id else None,
        job.created_at,
        job.started_at,
        job.finished_at,
        job.conversion.district.slug,
        job.conversion.school_year,
        polling,
        _job_template_digest(),
    )
    return f'"{hashlib.blake2b(repr(shown).encode(), digest_size=12).hexdigest()}"'
