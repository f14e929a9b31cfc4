"""A Canvas SIS-import endpoint answering in canvas-lms's own JSON shape, over an httpx MockTransport.

Only what upload recognition reads, each shape from canvas-lms:
- an import is created `initializing`, then `created` (app/models/sis_batch.rb `create_with_attachment`), and the
  upload's own name is not kept (it is stored as "sis_upload_<id>.zip");
- its JSON is `SisBatch#as_json` (app/models/sis_batch.rb) plus `user` and, once it has started,
  `csv_attachments` (lib/api/v1/sis_import.rb `sis_import_json`): one attachment per CSV inside the zip, under
  its base name (lib/sis/csv/import_refactored.rb `prepare`, `create_batch_attachment`), made when the import
  starts; a queued import has no `csv_attachments` key at all;
- the list is wrapped as {"sis_imports": [...]} (app/controllers/sis_imports_api_controller.rb `index`);
- the options echo what the controller stored (`create`): `skip_deletes` false when not sent, the diffing
  identifier as sent.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import zipfile
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import default as email_policy
from pathlib import PurePosixPath

import httpx

API_USER = {"id": 7, "name": "sifconvert API", "sortable_name": "API, sifconvert", "short_name": "sifconvert"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeImport:
    id: int
    csv_names: list[str]
    options: dict
    user: dict = field(default_factory=lambda: dict(API_USER))
    workflow_state: str = "created"
    created_at: str = field(default_factory=_now)
    starts_after_polls: int | None = 0  # list calls before it starts; None = stays queued

    def as_json(self) -> dict:
        o = self.options
        started = self.workflow_state not in ("initializing", "created")
        body = {
            "id": self.id,
            "created_at": self.created_at,
            "started_at": self.created_at if started else None,
            "ended_at": None,
            "updated_at": self.created_at,
            "progress": 0,
            "workflow_state": self.workflow_state,
            "data": {"import_type": o.get("import_type", "instructure_csv")},
            "batch_mode": True if o.get("batch_mode") == "true" else None,
            "batch_mode_term_id": None,
            "multi_term_batch_mode": None,
            "override_sis_stickiness": True if o.get("override_sis_stickiness") == "true" else None,
            "add_sis_stickiness": None,
            "clear_sis_stickiness": None,
            "diffing_data_set_identifier": o.get("diffing_data_set_identifier"),
            "diffed_against_import_id": None,
            "diffing_drop_status": o.get("diffing_drop_status"),
            "skip_deletes": o.get("skip_deletes") == "true",
            "change_threshold": int(o["change_threshold"]) if o.get("change_threshold") else None,
            "user": self.user,
        }
        if started:
            body["csv_attachments"] = [
                {
                    "id": 900 + n,
                    "uuid": f"u{n}",
                    "folder_id": None,
                    "display_name": name,
                    "filename": name,
                    "content-type": "text/csv",
                    "url": f"https://canvas.example/files/{900 + n}/download",
                    "size": 100,
                    "locked": False,
                    "hidden": False,
                }
                for n, name in enumerate(self.csv_names)
            ]
        return body


class FakeCanvas:
    """Imports by id; POSTs recorded; `fail_posts` makes the first N uploads end in a 500 or a timeout."""

    def __init__(
        self,
        *,
        fail_posts: int = 0,
        failure: str = "500",
        created_despite_failure: bool = True,
        starts_after_polls: int | None = 0,
    ):
        self.imports: dict[int, FakeImport] = {}
        self.posts: list[FakeImport] = []
        self.fail_posts = fail_posts
        self.failure = failure
        self.created_despite_failure = created_despite_failure
        self.starts_after_polls = starts_after_polls
        self.list_calls = 0
        self._ids = itertools.count(101)

    def add(self, imp: FakeImport) -> FakeImport:
        self.imports[imp.id] = imp
        return imp

    def next_id(self) -> int:
        return next(self._ids)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def _tick(self) -> None:
        self.list_calls += 1
        for imp in self.imports.values():
            if imp.workflow_state == "created" and imp.starts_after_polls is not None:
                if imp.starts_after_polls <= 0:
                    imp.workflow_state = "importing"
                else:
                    imp.starts_after_polls -= 1

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v1/users/self":
            return httpx.Response(200, json={**API_USER, "login_id": "sifconvert"})
        if path.endswith("/sis_imports") and request.method == "POST":
            return self._create(request)
        if path.endswith("/sis_imports") and request.method == "GET":
            self._tick()
            items = sorted(self.imports.values(), key=lambda i: -i.id)
            return httpx.Response(200, json={"sis_imports": [i.as_json() for i in items]})
        if "/sis_imports/" in path and request.method == "GET":
            imp = self.imports[int(path.rsplit("/", 1)[1])]
            return httpx.Response(200, json=imp.as_json())
        return httpx.Response(404, json={"errors": [{"message": "The specified resource does not exist."}]})

    def _create(self, request: httpx.Request) -> httpx.Response:
        content_type = request.headers["content-type"].encode()
        message = BytesParser(policy=email_policy).parsebytes(
            b"Content-Type: " + content_type + b"\r\n\r\n" + request.read()
        )
        form, upload = {}, b""
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "attachment":
                upload = part.get_payload(decode=True)
            else:
                form[name] = part.get_content().strip()
        with zipfile.ZipFile(io.BytesIO(upload)) as archive:
            names = [PurePosixPath(n).name for n in archive.namelist() if not n.endswith("/")]
        created = FakeImport(self.next_id(), names, form, starts_after_polls=self.starts_after_polls)
        failing = len(self.posts) < self.fail_posts
        self.posts.append(created)
        if failing and not self.created_despite_failure:
            return httpx.Response(500, json={"errors": [{"message": "An error occurred."}]})
        self.add(created)
        if failing:
            if self.failure == "timeout":
                raise httpx.ReadTimeout("timed out", request=request)
            return httpx.Response(500, json={"errors": [{"message": "An error occurred."}]})
        return httpx.Response(200, json=created.as_json())
