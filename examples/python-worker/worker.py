#!/usr/bin/env python3
"""An errand pull worker in Python, standard library only.

It leases jobs of one operation over errand's HTTP worker protocol (long-poll),
heartbeats while it works (reporting progress), and completes or fails each job.
The work here counts the words of {"text": "..."}; replace `work` with yours.

    python3 examples/python-worker/worker.py --url http://127.0.0.1:8080 --operation count-words
"""
import argparse
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request


class LeaseLost(Exception):
    """The lease expired or was taken over: stop working on the job."""


class Errand:
    def __init__(self, url, token=None):
        self.url = url.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, timeout=70):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            problem = json.loads(e.read() or b"{}")
            if problem.get("code") == "lease_expired":
                raise LeaseLost(problem.get("detail")) from None
            raise RuntimeError(f"{method} {path}: {e.code} {problem.get('code')}: {problem.get('detail')}") from None


def work(job, progress):
    """Counts words, reporting progress along the way."""
    text = job["input"].get("text", "")
    words = text.split()
    for i in range(1, 4):
        progress(i * 25, f"step {i} of 3")
        time.sleep(0.1)
    return {"words": len(words), "by": "python"}


def run_job(api, lease, stopping):
    lease_id = lease["lease_id"]
    job = lease["job"]
    done = threading.Event()

    def progress(percent, message):
        api.call("POST", f"/v1/leases/{lease_id}/heartbeat",
                 {"progress": {"percent": percent, "message": message}, "extend_seconds": 60})

    def keep_alive():  # extend the lease every 20 s while the job runs
        while not done.wait(20):
            try:
                api.call("POST", f"/v1/leases/{lease_id}/heartbeat", {"extend_seconds": 60})
            except LeaseLost:
                return

    threading.Thread(target=keep_alive, daemon=True).start()
    try:
        result = work(job, progress)
        api.call("POST", f"/v1/leases/{lease_id}/complete", {"result": result})
    except LeaseLost:
        pass  # someone else has the job now
    except Exception as e:  # the job failed: errand retries it with backoff
        api.call("POST", f"/v1/leases/{lease_id}/fail",
                 {"error": {"code": type(e).__name__, "message": str(e)}, "retry": True})
    finally:
        done.set()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("ERRAND_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--operation", required=True)
    ap.add_argument("--token", default=os.environ.get("ERRAND_TOKEN"))
    args = ap.parse_args()
    api = Errand(args.url, args.token)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    name = f"python@{socket.gethostname()}-{os.getpid()}"
    print(f"working {args.operation} jobs from {args.url} as {name}", flush=True)
    while not stopping.is_set():
        try:
            leases = api.call("POST", "/v1/leases", {"operations": [args.operation], "max_jobs": 4,
                                                     "wait_seconds": 5, "lease_seconds": 60, "worker": name})["leases"]
        except (OSError, RuntimeError) as e:
            print(f"lease failed: {e}", flush=True)
            time.sleep(1)
            continue
        threads = [threading.Thread(target=run_job, args=(api, l, stopping)) for l in leases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


if __name__ == "__main__":
    main()
