"""Run the ZIS simulator alone: ``python -m sifclient.zis --port 7080 --students 5000``."""

from __future__ import annotations

import argparse
import signal
import threading

from ..powerschool import SWITCHES, DistrictSpec
from .server import ZisSimulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sifclient.zis", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7080)
    parser.add_argument("--zone", default="PSZONE", help="zone id (URL path /zones/<zone>)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--schools", type=int, default=4)
    parser.add_argument("--school-year", type=int, default=2026)
    parser.add_argument("--day", type=int, default=0)
    parser.add_argument("--departed-students", type=int, default=0, help="students who left on March 13th")
    parser.add_argument("--co-teachers", action="store_true", help="co-teachers and an aide in some sections")
    parser.add_argument(
        "--switch", action="append", default=[], choices=SWITCHES, help="troubleshooting switch to turn on (repeatable)"
    )
    parser.add_argument("--tls", action="store_true", help="HTTPS with a CA made at start-up")
    parser.add_argument("--state-dir", help="persist zone state (queues, registrations) here")
    parser.add_argument(
        "--profile",
        choices=("default", "strict"),
        default="default",
        help="strict: answer as the OpenZIS server does (see sifclient/zis/strict.py)",
    )
    parser.add_argument("--zone-version", default="2.4", help="strict profile: the zone's one SIF version")
    parser.add_argument(
        "--agent",
        action="append",
        default=[],
        help="strict profile: SourceId of an agent defined in the zone (repeatable)",
    )
    parser.add_argument(
        "--credentials", metavar="USER:PASSWORD", help="strict profile: the zone authenticates agents by HTTP Basic"
    )
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    spec = DistrictSpec(
        seed=args.seed,
        students=args.students,
        schools=args.schools,
        school_year=args.school_year,
        day=args.day,
        departed_students=args.departed_students,
        co_teachers=args.co_teachers,
    ).replace(**{name: True for name in args.switch})
    credentials: tuple[str, str] | None = None
    if args.credentials:
        user, colon, password = args.credentials.partition(":")
        if not colon:
            parser.error("--credentials takes USER:PASSWORD")
        credentials = (user, password)
    simulator = ZisSimulator(
        spec,
        zone_id=args.zone,
        host=args.host,
        port=args.port,
        tls=args.tls,
        state_dir=args.state_dir,
        verbose=args.verbose,
        profile=args.profile,
        zone_version=args.zone_version,
        agents=tuple(args.agent),
        credentials=credentials,
    ).start()
    print(f"ZIS simulator ({args.profile} profile): zone URL {simulator.url}", flush=True)
    print(f"control API: {simulator.base_url}/_sim/spec", flush=True)
    if simulator.ca_file:
        print(f"CA bundle: {simulator.ca_file}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
