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
    parser.add_argument("--throttle", choices=["canvas", "off", "429", "403"], default="canvas",
                        help="canvas: Canvas's own accounting (default); 429/403: the harsh fault model")
    parser.add_argument("--seed-zip", type=Path, help="an SIS import (zip or CSV) applied at start-up: the legacy state")
    args = parser.parse_args()
    sim = CanvasSimulator(token=args.token, host=args.host, port=args.port, root_account_name=args.root_account_name)
    sim.start()
    if args.seed_zip:
        record = sim.seed_sis_import(args.seed_zip.read_bytes())
        print(f"Seeded from {args.seed_zip}: import {record.id} {record.workflow_state}", flush=True)
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


if __name__ == "__main__":
    main()
