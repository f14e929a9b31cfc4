"""Step 2's connection test: register with the zone, ping it, read its status, and say what it answered."""
from __future__ import annotations

from conversion.jobs import JobFailed, Progress
from conversion.models import Job
from conversion.services.diagnostics import refreshes_diagnostics
from conversion.services.zis import PULL_OBJECTS, agent_for, zis_failures, zone_url


def describe_zone(status) -> dict:
    """What the page shows of a SIF_ZoneStatus: plain values only (stored in the job's detail)."""
    providers = {}
    for source, objects in status.providers.items():
        for name in objects:
            providers[name] = source
    return {
        "zone_id": status.zone_id,
        "ready": status.ready,
        "nodes": [
            {"source_id": n.source_id, "name": n.name, "type": n.node_type, "mode": n.mode,
             "versions": list(n.versions), "sleeping": n.sleeping}
            for n in status.nodes
        ],
        "providers": providers,
        "missing_providers": [name for name in PULL_OBJECTS if name not in providers],
    }


@refreshes_diagnostics  # diagnostics follow every pull and connection test, failed or not
def run_test_connection(job: Job, progress: Progress) -> None:
    conversion = job.conversion
    steps = ["register", "ping", "zone status"]
    progress.update(current=0, total=len(steps), message=f"Registering with {zone_url(conversion)}", force=True)
    detail: dict = {"zone_url": zone_url(conversion)}
    with zis_failures(conversion, progress), agent_for(conversion, timeout=30) as agent:
        agent.register()
        detail["registered"] = True
        progress.update(current=1, message="Registered in Pull mode; pinging the ZIS", detail=detail, force=True)
        detail["ping"] = agent.ping()
        progress.update(current=2, message="Reading the zone status", detail=detail, force=True)
        detail["zone"] = describe_zone(agent.zone_status())
    zone = detail["zone"]
    words = ["Registered", "ping answered" if detail["ping"] else "ping NOT answered",
             "zone ready" if zone["ready"] else "zone NOT ready"]
    if zone["missing_providers"]:
        words.append(f"no provider for {len(zone['missing_providers'])} object(s)")
    progress.update(current=3, message="; ".join(words), detail=detail, force=True)
    if not detail["ping"] or zone["ready"] is False:
        raise JobFailed("The ZIS answered, but the zone is not ready: " + "; ".join(words) + ".")
