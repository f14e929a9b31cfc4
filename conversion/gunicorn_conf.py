"""gunicorn's settings for the web process; scripts/start and the dashboard bench both run with them.

Sync workers, two per core: each process takes the next connection only when it is free, so 20 busy clients
share the processes evenly. With threaded workers a keep-alive connection stays with the process that
accepted it, and a process that happened to accept more of them kept its clients waiting: on 2 cores the
dashboard bench (python manage.py bench --sizes "") measured the job poll's p95 at 61-66 ms with 4 sync
workers against 88-146 ms with 4 workers x 2 threads, and the portfolio's at 49-66 ms against 64-116 ms.
Sync workers answer one request per connection and expect a buffering reverse proxy (nginx) in front
of them in production, as gunicorn's deployment guide says; the loopback demo needs none.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
worker_class = "sync"
threads = 1

# gunicorn's control socket (for gunicornc) goes in this product's var dir, not in $XDG_RUNTIME_DIR or
# ~/.gunicorn, which every gunicorn of the same user on the machine shares (two would take each other's).
_var_dir = os.environ.get("SIFCONVERT_VAR_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var"
)
control_socket = os.path.join(_var_dir, "gunicorn.ctl")
