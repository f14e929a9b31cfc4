"""python -m canvas.simulator --port 7090 --token T"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from canvas.simulator import CanvasSimulator


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the Canvas LMS simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7090)
    parser.add_argument("--token", required=True, help="the API token clients must present")
    parser.add_argument("--root-account-name", default="Simulated District")
    parser.add_argument(
        "--throttle",
        choices=["canvas", "off", "429", "403"],
        default="canvas",
        help="canvas: Canvas's own accounting (default); 429/403: the harsh fault model",
    )
    parser.add_argument(
        "--seed-zip", type=Path, help="an SIS import (zip or CSV) applied at start-up: the legacy state"
    )
    parser.add_argument(
        "--demo-assignments",
        type=int,
        default=0,
        metavar="N",
        help="after seeding, give N section courses a graded assignment flagged for the SIS "
        "(so grade passback has something to send)",
    )
    args = parser.parse_args()
    sim = CanvasSimulator(token=args.token, host=args.host, port=args.port, root_account_name=args.root_account_name)
    sim.start()
    if args.seed_zip:
        record = sim.seed_sis_import(args.seed_zip.read_bytes())
        print(f"Seeded from {args.seed_zip}: import {record.id} {record.workflow_state}", flush=True)
    if args.demo_assignments:
        print(f"Demo assignments: {add_demo_assignments(sim, args.token, args.demo_assignments)} scores", flush=True)
    if args.throttle == "off":
        sim.set_throttle(enabled=False)
    elif args.throttle != "canvas":
        sim.set_throttle(enabled=True, model="harsh", mode=args.throttle)
    print(f"Canvas simulator on {sim.url} (root account id {sim.root_account_id})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


def add_demo_assignments(sim: CanvasSimulator, token: str, courses: int) -> int:
    """One "post to SIS" assignment with up to five graded students in each of the first `courses` section
    courses, read through the simulator's own API. Returns how many scores it recorded."""
    from canvas.client import CanvasClient

    scores = 0
    with CanvasClient(sim.url, token) as client:
        for course in client.iter_courses("self"):
            if courses <= 0:
                break
            students = [
                e.sis_user_id
                for e in client.iter_enrollments(course_id=course.id)
                if e.type == "StudentEnrollment" and e.sis_user_id
            ]
            if not (course.sis_course_id or "").startswith("sec_") or not students:
                continue
            assignment = sim.add_assignment(
                f"sis_course_id:{course.sis_course_id}",
                name="Unit 1 essay",
                points_possible=10,
                post_to_sis=True,
                due_at="2026-10-01T18:00:00Z",
            )
            for n, student in enumerate(students[:5]):
                sim.grade(assignment.id, f"sis_user_id:{student}", score=6 + n % 5)
                scores += 1
            courses -= 1
    return scores


if __name__ == "__main__":
    main()
