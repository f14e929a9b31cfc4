"""Step 2's connection test: register with the zone, ping it, read its status, and say what it answered."""

from __future__ import annotations

from conversion.jobs import JobFailed, Progress
from conversion.models import Job
from conversion.services.diagnostics import refreshes_diagnostics
from conversion.services.zis import PULL_OBJECTS, agent_for, register, source_id, zis_failures, zone_url

# What grade passback publishes (SIF_Event Add and Change of each): PowerSchool subscribes to them.
PUBLISH_OBJECTS: tuple[str, ...] = ("GradingAssignment", "GradingAssignmentScore")


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
            {
                "source_id": n.source_id,
                "name": n.name,
                "type": n.node_type,
                "mode": n.mode,
                "versions": list(n.versions),
                "sleeping": n.sleeping,
            }
            for n in status.nodes
        ],
        "providers": providers,
        "missing_providers": [name for name in PULL_OBJECTS if name not in providers],
    }


def describe_acl(acl, conversion) -> dict:
    """What the zone's access control list (SIF_AgentACL of the register ack) lets our agent do of what the
    conversion needs, and what to ask for where it falls short. ``reported`` is False when the ZIS sent none."""
    if acl is None:
        return {
            "reported": False,
            "request": {},
            "publish": {},
            "missing_request": [],
            "missing_publish": [],
            "asks": [],
        }
    request = {name: acl.may("request", name) for name in PULL_OBJECTS}
    publish = {
        name: acl.may("provide", name) and acl.may_publish(name, "Add") and acl.may_publish(name, "Change")
        for name in PUBLISH_OBJECTS
    }
    missing_request = [n for n, ok in request.items() if not ok]
    missing_publish = [n for n, ok in publish.items() if not ok]
    agent = source_id(conversion)
    asks = []
    if missing_request:
        asks.append(
            f"Ask the ZIS administrator to let agent {agent} request {', '.join(missing_request)} "
            "(its access control list in the zone); the pull needs them."
        )
    if missing_publish:
        asks.append(
            f"For grade passback, ask the ZIS administrator to let agent {agent} provide and publish "
            f"(Add, Change) {', '.join(missing_publish)}."
        )
    return {
        "reported": True,
        "request": request,
        "publish": publish,
        "missing_request": missing_request,
        "missing_publish": missing_publish,
        "asks": asks,
    }


def provider_asks(missing_providers: list[str]) -> list[str]:
    if not missing_providers:
        return []
    return [
        f"Ask PowerSchool (the district's PowerSchool SIF agent settings) to publish "
        f"{', '.join(missing_providers)} in this zone: no agent provides them."
    ]


@refreshes_diagnostics  # diagnostics follow every pull and connection test, failed or not
def run_test_connection(job: Job, progress: Progress) -> None:
    conversion = job.conversion
    steps = ["register", "ping", "zone status"]
    progress.update(current=0, total=len(steps), message=f"Registering with {zone_url(conversion)}", force=True)
    detail: dict = {"zone_url": zone_url(conversion)}
    with zis_failures(conversion, progress), agent_for(conversion, timeout=30) as agent:
        register(conversion, agent, progress)
        detail["registered"] = True
        detail["sif_version"] = agent.version
        detail["acl"] = describe_acl(agent.acl, conversion)
        progress.update(current=1, message="Registered in Pull mode; pinging the ZIS", detail=detail, force=True)
        detail["ping"] = agent.ping()
        progress.update(current=2, message="Reading the zone status", detail=detail, force=True)
        detail["zone"] = describe_zone(agent.zone_status())
    zone = detail["zone"]
    acl = detail["acl"]
    # SIF 2.x has no readiness element; a ZIS that reports none (OpenZIS) is "not reported", never "not ready".
    readiness = {True: "zone ready", False: "zone NOT ready", None: "zone readiness not reported"}[zone["ready"]]
    words = [
        f"Registered (SIF {detail['sif_version']})",
        "ping answered" if detail["ping"] else "ping NOT answered",
        readiness,
    ]
    if zone["missing_providers"]:
        words.append(f"no provider for {len(zone['missing_providers'])} object(s)")
    if not acl["reported"]:
        words.append("permissions (ACL) not reported")
    elif acl["missing_request"]:
        words.append(f"may NOT request {', '.join(acl['missing_request'])}")
    if acl["missing_publish"]:
        words.append(f"may not publish {', '.join(acl['missing_publish'])} (grade passback)")
    detail["asks"] = acl["asks"] + provider_asks(zone["missing_providers"])
    progress.update(current=3, message="; ".join(words), detail=detail, force=True)
    if not detail["ping"] or zone["ready"] is False:
        raise JobFailed("The ZIS answered, but the zone is not ready: " + "; ".join(words) + ".")
    if acl["missing_request"]:
        raise JobFailed(
            "The ZIS answered, but our agent may not request everything the pull needs: "
            + "; ".join(words)
            + ". "
            + " ".join(acl["asks"])
        )
