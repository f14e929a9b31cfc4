"""The ZIS and Canvas simulators set up for a conversion test: same district on both sides."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from canvas.simulator import CanvasSimulator
from conversion.services import legacy
from conversion.services import zis as zis_service
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator

TOKEN = "canvas-test-token-0123456789"


@contextlib.contextmanager
def simulated_district(
    conversion,
    spec: DistrictSpec,
    *,
    zone_id: str = "ALPHA",
    seed_canvas: bool = True,
    profile: str = "default",
    integration: legacy.LegacyIntegration | None = None,
):
    """Start both simulators, seed Canvas with the legacy state, point the conversion at them.

    ``profile="strict"`` runs the ZIS as OpenZIS answers (sifclient/zis/strict.py), with our agent defined in the
    zone (default rights) and the zone in the conversion's SIF version."""
    with (
        ZisSimulator(
            spec,
            zone_id=zone_id,
            profile=profile,
            zone_version=conversion.sif_version,
            agents=(zis_service.source_id(conversion),),
        ) as zis,
        CanvasSimulator(token=TOKEN) as canvas,
    ):
        if seed_canvas:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "legacy.zip"
                if integration is not None:  # the legacy Canvas a real integration left (its own ids and logins)
                    legacy.write_integration_zip(spec, path, integration)
                else:
                    legacy.write_legacy_zip(spec, path)
                canvas.seed_sis_import(path.read_bytes())
        conversion.zis_url = zis.base_url + "/zones"
        conversion.zone_id = zone_id
        conversion.save()
        district = conversion.district
        district.canvas_url = canvas.url
        district.canvas_token = TOKEN
        district.canvas_account_id = str(canvas.root_account_id)
        district.save()
        yield zis, canvas
