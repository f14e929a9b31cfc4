"""Recognising this job's earlier upload from what real Canvas shows (Canvas-shaped JSON, see canvas_fake).

Real Canvas lists the CSVs inside the zip in `csv_attachments`, and nothing while the import is queued; the
upload's own name is never shown. After a 5xx or a timeout on the upload, the job must neither upload twice nor
adopt an import that is not its own.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from django.utils import timezone

from canvas.client import CanvasClient
from conversion.services import canvas_import
from conversion.services.canvas_import import UploadUndecided, job_token
from tests.conversion.canvas_fake import FakeCanvas, FakeImport

SYNC_OPTIONS = {"diffing_data_set_identifier": "sifconvert-alpha-2027", "diffing_drop_status": "deleted"}


def package() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("users.csv", "user_id,login_id,status\nu1,u1,active\n")
        archive.writestr("enrollments.csv", "section_id,user_id,role,status\ns1,u1,student,active\n")
    return out.getvalue()


class Sleeps:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(fake: FakeCanvas) -> CanvasClient:
    return CanvasClient(
        "https://canvas.example", "T", http_transport=fake.transport(), sleep=lambda s: None, max_retries=2
    )


def submit(fake: FakeCanvas, *, job_id: int = 41, state: dict | None = None, sleep=None, **options):
    state = {} if state is None else state
    with client(fake) as canvas:
        return canvas_import.submit_once(
            canvas,
            "1",
            package(),
            state=state,
            save=state.update,
            token=job_token(job_id, "sync"),
            sleep=sleep or Sleeps(),
            **(options or SYNC_OPTIONS),
        )


@pytest.mark.parametrize("failure", ["500", "timeout"])
def test_failed_upload_that_canvas_queued_is_adopted_once_it_starts_not_sent_again(failure):
    # Canvas took the upload but answered 500 (or never answered); the import waits in the queue, showing no
    # files, for three polls, then starts and lists the CSVs of the zip under their own names.
    fake = FakeCanvas(fail_posts=1, failure=failure, starts_after_polls=3)
    sleeps = Sleeps()
    state: dict = {}
    import_id = submit(fake, state=state, sleep=sleeps)
    assert len(fake.posts) == 1, "the import Canvas had queued was uploaded a second time"
    assert import_id == fake.posts[0].id and state["import_id"] == import_id
    assert fake.imports[import_id].workflow_state == "importing"
    assert all(job_token(41, "sync") in name for name in fake.imports[import_id].csv_names)
    assert len(sleeps.calls) >= 2  # it waited for the queued import to start, in polls


def test_rerun_after_a_dead_worker_finds_its_import_by_the_csvs_canvas_lists():
    # The worker died between the upload and saving the id. Canvas shows job 41's import (finished) and job 4's
    # import (same options): only the CSV names tell them apart, and job 4 must not be mistaken for job 41.
    fake = FakeCanvas()
    ours = fake.add(
        FakeImport(
            fake.next_id(),
            [f"users-{job_token(41, 'sync')}_filtered.csv", f"enrollments-{job_token(41, 'sync')}.csv"],
            SYNC_OPTIONS,
            workflow_state="imported",
        )
    )
    fake.add(FakeImport(fake.next_id(), [f"users-{job_token(4, 'sync')}.csv"], SYNC_OPTIONS, workflow_state="imported"))
    state = {"submitting_at": (timezone.now() - dt.timedelta(minutes=1)).isoformat()}
    assert submit(fake, state=state) == ours.id
    assert fake.posts == []


def test_queued_imports_of_other_users_or_data_sets_are_not_waited_for():
    # The first upload never reached Canvas (500 before anything was made). Canvas's queue holds the legacy
    # sync's import (no diffing identifier) and one by another API user: neither can be this job's.
    fake = FakeCanvas(fail_posts=1, created_despite_failure=False)
    fake.add(FakeImport(fake.next_id(), [], {}, starts_after_polls=None))
    fake.add(FakeImport(fake.next_id(), [], SYNC_OPTIONS, user={"id": 99, "name": "someone"}, starts_after_polls=None))
    sleeps = Sleeps()
    import_id = submit(fake, sleep=sleeps)
    assert len(fake.posts) == 2 and import_id == fake.posts[1].id
    assert sleeps.calls == [2]  # the back-off before asking, and no wait for the strangers


def test_a_queued_import_that_may_be_ours_and_never_starts_stops_the_job_within_its_bound():
    fake = FakeCanvas(fail_posts=1, starts_after_polls=None)
    sleeps = Sleeps()
    with pytest.raises(UploadUndecided, match=r"still queued .*nothing was sent again"):
        submit(fake, sleep=sleeps)
    assert len(fake.posts) == 1
    waited = sum(sleeps.calls) - 2
    assert waited == canvas_import.UNDECIDED_MAX_WAIT_SECONDS


def test_a_started_import_listing_other_files_is_not_ours():
    fake = FakeCanvas(fail_posts=1, created_despite_failure=False)
    fake.add(
        FakeImport(fake.next_id(), [f"users-{job_token(412, 'sync')}.csv"], SYNC_OPTIONS, workflow_state="importing")
    )
    import_id = submit(fake)
    assert len(fake.posts) == 2 and import_id == fake.posts[1].id


def test_csvs_inside_the_zip_are_named_after_the_job_and_job_1_never_matches_job_12():
    named = canvas_import.name_entries(package(), job_token(1, "sync"))
    with zipfile.ZipFile(io.BytesIO(named)) as archive:
        assert sorted(archive.namelist()) == ["enrollments-sifconvert-sync-job1.csv", "users-sifconvert-sync-job1.csv"]
        assert archive.read("users-sifconvert-sync-job1.csv").startswith(b"user_id,login_id")
    assert canvas_import.name_entries(named, job_token(1, "sync")) == canvas_import.name_entries(
        named, job_token(1, "sync")
    )  # already named: left as it is
    expected = canvas_import.Expected(job_token(1, "sync"), {})
    twelve = FakeImport(1, [f"users-{job_token(12, 'sync')}.csv"], {}, workflow_state="imported")
    one = FakeImport(2, [f"users-{job_token(1, 'sync')}_filtered.csv"], {}, workflow_state="imported")
    from canvas.models import SisImport

    assert not expected.carries_token(SisImport.from_json(twelve.as_json()))
    assert expected.carries_token(SisImport.from_json(one.as_json()))
