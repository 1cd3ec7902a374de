"""`shoprec bench load`: the service under a mixed workload on loopback, then again during a rebuild-and-swap.

Steps: prepare (or reuse from `--workdir`) the demo shop at the requested scale (ingest + build),
start `shoprec serve` in a subprocess on 127.0.0.1, drive 70% recommend / 20% search / 10% events
from a second process for `--duration` seconds (and at most `--max-requests` requests) with
`--concurrency` connections, report throughput, p50/p99 per endpoint, errors and server RSS;
then repeat while `POST /v1/admin/build` rebuilds and the service swaps versions.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from shoprec.settings import ServiceSettings, Settings

ADMIN_KEY = "bench-admin-key"
PUBLIC_KEY = "bench-public-key"
ENDPOINTS = ("recommend", "search", "events")
MIX = (0.7, 0.2, 0.1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load per phase")
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=None, help="shoppers (default: events / 50)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections of the load driver")
    parser.add_argument("--rate", type=float, default=500.0,
                        help="offered requests/s, Poisson arrivals over the connections (0: closed loop, each "
                             "connection sends its next request as soon as the last one is answered)")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="upper bound on requests per phase")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (one per core)")
    parser.add_argument("--workdir", type=Path, default=Path("shoprec-data/bench-load"),
                        help="where the demo shop, store and artifacts live (reused when the scale matches)")
    parser.add_argument("--models", default=None, help="models to build (default: the build's defaults)")
    parser.add_argument("--skip-swap", action="store_true", help="skip the phase during a rebuild")
    parser.add_argument("--swap-max-s", type=float, default=900.0, help="longest the during-swap phase may run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--draw", choices=("distinct", "log"), default="distinct",
                        help="users, items and queries: 'distinct' values equally often (the long tail as often "
                             "as the head), or 'log': rows of the event log, as often as they occur there")


# -- preparation ----------------------------------------------------------------------------------

def bench_settings(workdir: Path) -> Settings:
    workdir = workdir.resolve()
    return Settings(
        store_url=f"sqlite:///{workdir / 'shop.db'}", artifacts_dir=workdir / "artifacts",
        embedding_cache_dir=workdir / "embedding-cache",
        service=ServiceSettings(public_keys=[PUBLIC_KEY], admin_keys=[ADMIN_KEY], rate_limit_per_minute=0,
                                max_request_bytes=5_000_000),
    )


def child_env(settings: Settings) -> dict[str, str]:
    from shoprec.service.builds import settings_environment

    env = dict(os.environ)
    env.update(settings_environment(settings))
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    return env


def prepare(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Generate, ingest and build the demo shop unless `workdir` already holds this scale."""
    workdir: Path = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    users = args.users or max(100, args.events // 50)
    scale = {"products": args.products, "events": args.events, "users": users, "seed": args.seed}
    marker = workdir / "prepared.json"
    from shoprec.artifacts import ArtifactStore

    artifacts = ArtifactStore(settings.artifacts_dir)
    if marker.exists() and json.loads(marker.read_text()).get("scale") == scale and artifacts.versions():
        print(f"reusing {workdir} ({scale})", flush=True)
        return json.loads(marker.read_text())
    # Each stage leaves a marker so an interrupted preparation resumes where it stopped.
    stages = json.loads((workdir / "stages.json").read_text()) if (workdir / "stages.json").exists() else {}
    if stages.get("scale") != scale:
        stages = {"scale": scale}
    data_dir = workdir / "data"

    def done(stage: str, seconds: float) -> None:
        stages[stage] = round(seconds, 1)
        (workdir / "stages.json").write_text(json.dumps(stages))
        print(f"{stage}: {seconds:.1f}s", flush=True)

    if "generate_s" not in stages:
        t0 = time.perf_counter()
        from shoprec.data.demo import generate_demo

        shop = generate_demo(n_products=args.products, n_users=users, n_events=args.events, seed=args.seed)
        shop.write(data_dir)
        del shop
        done("generate_s", time.perf_counter() - t0)
    if "ingest_s" not in stages:
        t0 = time.perf_counter()
        db = Path(settings.store_url.removeprefix("sqlite:///"))
        for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            leftover.unlink(missing_ok=True)  # a half-done ingest is redone from scratch
        for kind, name in (("catalog", "products"), ("users", "users"), ("events", "events")):
            _run([sys.executable, "-m", "shoprec.cli", "ingest", kind, str(data_dir / f"{name}.jsonl"), "--no-progress"], settings)
        done("ingest_s", time.perf_counter() - t0)
    if "build_s" not in stages or not artifacts.versions():
        t0 = time.perf_counter()
        build_cmd = [sys.executable, "-m", "shoprec.cli", "build"] + (["--models", args.models] if args.models else [])
        _run(build_cmd, settings)
        done("build_s", time.perf_counter() - t0)
    generated_s, ingest_s, build_s = stages["generate_s"], stages["ingest_s"], stages["build_s"]
    info = {"scale": scale, "generate_s": round(generated_s, 1), "ingest_s": round(ingest_s, 1), "build_s": round(build_s, 1)}
    marker.write_text(json.dumps(info))
    return info


def _run(cmd: list[str], settings: Settings) -> None:
    proc = subprocess.run(cmd, env=child_env(settings), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:])} failed ({proc.returncode}):\n{proc.stderr[-3000:] or proc.stdout[-3000:]}")


def sample_inputs(settings: Settings, workdir: Path, seed: int, n: int = 2000, draw: str = "distinct") -> dict[str, list[str]]:
    """Raw user ids, item ids and queries to send (drawn from the demo files, else the store).

    draw: "distinct" picks `n` distinct values of each, every one equally often (the long tail as
    often as the head); "log" picks `10 n` rows of the event log, so a value comes up as often as
    it does there (active shoppers, popular items and frequent queries most)."""
    if draw not in ("distinct", "log"):
        raise ValueError(f"draw must be 'distinct' or 'log', not {draw!r}")
    rng = random.Random(seed)
    data_dir = workdir / "data"
    users: list[str] = []
    queries: list[str] = []
    items: list[str] = []
    events_file = data_dir / "events.jsonl"
    if events_file.exists():
        with events_file.open() as f:
            for line_no, line in enumerate(f):
                if line_no > 300_000:
                    break
                row = json.loads(line)
                users.append(str(row["user_id"]))
                if row.get("query"):
                    queries.append(row["query"])
                if row.get("item_id"):
                    items.append(str(row["item_id"]))
    if not items:
        import pyarrow.compute as pc

        from shoprec.data.store import open_store

        with open_store(settings.store_url) as store:
            items = store.read_products().column("id").to_pylist()
            titles = store.read_products().column("title").to_pylist()
        queries = queries or [" ".join(str(t).split()[:2]) for t in titles[:n]]
        del pc
    if draw == "log" and users and items and queries:
        return {"users": rng.choices(users, k=10 * n), "items": rng.choices(items, k=10 * n),
                "queries": rng.choices(queries, k=10 * n)}
    users = sorted(set(users)) or [f"bench-user-{i}" for i in range(n)]
    items = sorted(set(items))
    queries = sorted(set(queries)) or ["shoes"]
    pick = lambda values: rng.sample(values, min(n, len(values)))  # noqa: E731
    return {"users": pick(users), "items": pick(items), "queries": pick(queries)}


# -- the server -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(settings: Settings, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    """Start `shoprec serve` and wait until every worker answers /readyz (new connections spread
    over the workers' sockets, so a connection made earlier could land on a worker still loading)
    and the feed keeper serves the version too: until then it replays the events since the build
    and warms feeds on the same two cores, a start-up cost the steady phase should not measure."""
    import httpx

    from shoprec.service import keeper

    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoprec.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--log-level", "warning"],
        env=child_env(settings), stdout=log, stderr=subprocess.STDOUT,
    )
    processes = workers + int(keeper.wanted(settings))
    limit_s = 900
    deadline = time.monotonic() + limit_s
    ready: set[int] = set()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                answer = response.json()
                ready.add(answer.get("worker"))
                serving = answer.get("serving_processes")  # null: no shared answers, so no keeper to wait for
                if len(ready) >= workers and (serving is None or serving >= processes):
                    return proc
                time.sleep(0.05 if len(ready) < workers else 0.25)
                continue  # another fresh connection, maybe to another worker
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"server not ready after {limit_s} s")


def server_rss_mb(proc: subprocess.Popen, proportional: bool = False) -> float:
    """Resident memory of the server's processes, summed (MB). proportional: each shared page (the
    libraries, the lexical index's mapped files) counted once over the processes mapping it (PSS),
    not once in each: what the machine actually holds."""
    import psutil

    def size(p) -> int:
        return p.memory_full_info().pss if proportional else p.memory_info().rss

    try:
        root = psutil.Process(proc.pid)
        members = [root] + root.children(recursive=True)
        return round(sum(size(p) for p in members if p.is_running()) / 2**20, 1)
    except psutil.Error:
        return float("nan")


def server_cpu_s(proc: subprocess.Popen) -> dict[str, float]:
    """CPU seconds (user + system) the server's processes have used so far: "serving" (the workers
    and the supervisor) and "idle_priority" (the feed keeper, and a build while one runs)."""
    import psutil

    used = {"serving": 0.0, "idle_priority": 0.0}
    try:
        root = psutil.Process(proc.pid)
        for p in [root] + root.children(recursive=True):
            try:
                times = p.cpu_times()
                idle = hasattr(os, "sched_getscheduler") and os.sched_getscheduler(p.pid) == getattr(os, "SCHED_IDLE", -1)
            except (psutil.Error, OSError):  # ended meanwhile
                continue
            used["idle_priority" if idle else "serving"] += times.user + times.system
    except psutil.Error:
        pass
    return used


# -- the load driver (runs in its own process) ----------------------------------------------------

class HttpConnection:
    """One keep-alive HTTP/1.1 connection on asyncio streams.

    The load driver shares two cores with the server, so its per-request CPU decides how much is
    left to measure: this costs about a tenth of an httpx request (uvloop when installed)."""

    def __init__(self, host: str, port: int, headers: dict[str, str]):
        self.host, self.port = host, port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **headers}.items())
        self.reader = self.writer = None

    async def request(self, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
        import asyncio

        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {target} HTTP/1.1\r\n{self.headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            status_and_headers = await self.reader.readuntil(b"\r\n\r\n")
            lines = status_and_headers.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" in fields:
                payload = await self.reader.readexactly(int(fields["content-length"]))
            else:  # chunked
                parts = []
                while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readexactly(2)
                await self.reader.readexactly(2)
                payload = b"".join(parts)
        except BaseException:
            self.close()
            raise
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def drive(base_url: str, inputs: dict[str, list[str]], duration_s: float, concurrency: int, max_requests: int,
          rate: float, seed: int, out_path: str, stop=None) -> None:
    """Send the mixed workload; write per-endpoint latencies (ms), their start times (`time.monotonic`,
    comparable across processes) and error counts as JSON."""
    import asyncio
    from urllib.parse import urlencode, urlsplit

    import orjson

    try:
        import uvloop
    except ImportError:  # the plain asyncio loop works, at a higher driver cost per request
        uvloop = None
    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    started: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    errors: dict[str, int] = {name: 0 for name in ENDPOINTS}
    error_samples: list[str] = []
    sent = [0]
    users, items, queries = inputs["users"], inputs["items"], inputs["queries"]
    cumulative = np.cumsum(MIX)
    url = urlsplit(base_url)

    def next_request() -> tuple[str, str, str, bytes | None]:
        kind = ENDPOINTS[int(np.searchsorted(cumulative, rng.random(), side="right"))]
        if kind == "recommend":
            if rng.random() < 0.8:
                return kind, "GET", "/v1/recommend/home?" + urlencode({"user": rng.choice(users), "k": 20}), None
            return kind, "GET", "/v1/recommend/similar?" + urlencode({"item": rng.choice(items), "k": 20}), None
        if kind == "search":
            params: dict[str, Any] = {"q": rng.choice(queries), "k": 20}
            if rng.random() < 0.5:
                params["user"] = rng.choice(users)
            return kind, "GET", "/v1/search?" + urlencode(params), None
        event = {"event_id": uuid.uuid4().hex, "user_id": rng.choice(users), "item_id": rng.choice(items),
                 "type": rng.choice(["view", "click", "add_to_cart"]), "timestamp": time.time()}
        return kind, "POST", "/v1/events", orjson.dumps(event)

    async def worker(deadline: float, interval: float) -> None:
        connection = HttpConnection(url.hostname, url.port, {"X-API-Key": PUBLIC_KEY})
        next_at = time.perf_counter()
        while time.perf_counter() < deadline and sent[0] < max_requests and not (stop is not None and stop.is_set()):
            sent[0] += 1
            if interval:
                # Poisson arrivals: the connections together offer `rate` requests/s at random moments,
                # not in lockstep bursts of `concurrency` requests.
                next_at += rng.expovariate(1.0 / interval)
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            kind, method, target, body = next_request()
            started[kind].append(time.monotonic())
            t0 = time.perf_counter()
            try:
                status, payload = await asyncio.wait_for(connection.request(method, target, body), 30)
                ok = status < 400
                if not ok and len(error_samples) < 5:
                    error_samples.append(f"{kind} {status} {payload[:200].decode(errors='replace')}")
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                ok = False
                if len(error_samples) < 5:
                    error_samples.append(f"{kind} {type(exc).__name__}")
            latencies[kind].append((time.perf_counter() - t0) * 1000.0)
            if not ok:
                errors[kind] += 1
        connection.close()

    async def main() -> float:
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        interval = concurrency / rate if rate > 0 else 0.0
        await asyncio.gather(*(worker(deadline, interval) for _ in range(concurrency)))
        return time.perf_counter() - t0

    elapsed = uvloop.run(main()) if uvloop is not None else asyncio.run(main())
    Path(out_path).write_text(json.dumps({"latencies": latencies, "started": started, "errors": errors,
                                          "elapsed_s": elapsed, "error_samples": error_samples}))


def run_phase(base_url: str, inputs, args, seed: int, label: str, workdir: Path, until=None,
              published=None) -> dict[str, Any]:
    """One load phase in a second process; with `until`, it lasts until `until()` is true (and at least
    `--duration`, at most `--swap-max-s`), plus two seconds on the new version. With `published`
    (true once the new version is there to load), the figures are also split at that moment:
    while building, and while the workers load and swap in the new version."""
    out = workdir / f"load-{label}.json"
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    duration = args.duration if until is None else args.swap_max_s
    proc = ctx.Process(target=drive, args=(base_url, inputs, duration, args.concurrency, args.max_requests, args.rate,
                                           seed, str(out), stop))
    proc.start()
    published_at = None
    if until is not None:
        started = time.monotonic()
        while proc.is_alive() and not until():
            if published_at is None and published is not None and published():
                published_at = time.monotonic()
            time.sleep(0.5)
        time.sleep(2.0)
        while proc.is_alive() and time.monotonic() < started + args.duration:
            time.sleep(0.5)
        stop.set()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"the {label} load driver failed (exit code {proc.exitcode})")
    raw = json.loads(out.read_text())
    figures = summarise(raw)
    if published_at is not None:
        # After publication the workers load and warm the new version, then swap.
        figures["split"] = {"while building": summarise(raw, before=published_at),
                            "while loading and swapping": summarise(raw, after=published_at)}
    return figures


def summarise(raw: dict[str, Any], before: float | None = None, after: float | None = None) -> dict[str, Any]:
    """Throughput, errors and p50/p99 per endpoint of the requests started in [after, before)."""
    lat = {k: np.asarray(v, dtype=np.float64) for k, v in raw["latencies"].items()}
    elapsed = raw["elapsed_s"]
    if before is not None or after is not None:
        started = {k: np.asarray(v, dtype=np.float64) for k, v in raw["started"].items()}
        first = min((v.min() for v in started.values() if len(v)), default=0.0)
        last = max((v.max() for v in started.values() if len(v)), default=0.0)
        lo, hi = after if after is not None else first, before if before is not None else last
        lat = {k: v[(started[k] >= lo) & ((started[k] < hi) | (before is None))] for k, v in lat.items()}
        elapsed = max(hi - lo, 1e-9)
    total = sum(len(v) for v in lat.values())
    pct = lambda v, q: round(float(np.percentile(v, q)), 2) if len(v) else None  # noqa: E731
    return {
        "rps": round(total / elapsed, 1),
        "requests": total,
        "errors": int(sum(raw["errors"].values())) if before is None and after is None else None,
        "p50_ms": {k: pct(v, 50) for k, v in lat.items()},
        "p99_ms": {k: pct(v, 99) for k, v in lat.items()},
        "count": {k: int(len(v)) for k, v in lat.items()},
        "elapsed_s": round(elapsed, 2),
        "error_samples": raw.get("error_samples", []) if before is None and after is None else [],
    }


def cache_stats(admin) -> dict[str, Any]:
    """One serving process's (the one the admin connection reached) reuse of answers and of search
    candidates so far (hit counts, rates), and how many shoppers it serves live."""
    engine = admin.get("/v1/admin/stats").json().get("engine", {})
    return {"answers": engine.get("result_cache"), "search_candidates": engine.get("search_candidate_cache"),
            "precomputed answers since start": engine.get("precomputed_answers"),
            "answers computed since start (recommend, search)": engine.get("computed_answers"),
            "home feeds from before the shopper's newest event, the keeper computing it": engine.get("pending_answers"),
            "shoppers with events the version's build did not read": engine.get("shoppers_since_build"),
            "home feeds computed before serving the version": engine.get("warmed_answers")}


def print_phase(name: str, figures: dict[str, Any]) -> None:
    print(f"\n== {name}: {figures['requests']} requests in {figures['elapsed_s']}s = {figures['rps']} req/s, "
          f"errors {figures['errors']}, server RSS {figures.get('rss_mb')} MB"
          + (f" (PSS {figures['pss_mb']} MB)" if figures.get("pss_mb") else ""))
    cpu = figures.get("server_cpu_ms_per_request")
    if cpu:
        print(f"   server CPU per request: {cpu['serving']} ms in the workers, {cpu['idle_priority']} ms at idle priority "
              "(the feed keeper)")
    print(f"   {'endpoint':10s} {'count':>7s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for endpoint in ENDPOINTS:
        print(f"   {endpoint:10s} {figures['count'][endpoint]:>7d} {figures['p50_ms'][endpoint]!s:>8s} {figures['p99_ms'][endpoint]!s:>8s}")
    for name, cache in (figures.get("caches") or {}).items():
        if isinstance(cache, int) or (isinstance(cache, dict) and "hits" not in cache):
            print(f"   {name}: {cache}")
        elif cache:
            shared = f" ({cache['shared_hits']} computed by another worker)" if cache.get("shared_hits") else ""
            print(f"   reused {name}: {cache['hits']} hits{shared}, {cache['misses']} misses since start "
                  f"(hit rate {cache['hit_rate']}), {cache['entries']} kept")
    for sample in figures["error_samples"]:
        print(f"   error: {sample}")
    for part, split in (figures.get("split") or {}).items():
        p99 = "/".join(str(split["p99_ms"][e]) for e in ENDPOINTS)
        p50 = "/".join(str(split["p50_ms"][e]) for e in ENDPOINTS)
        print(f"   {part}: {split['requests']} requests in {split['elapsed_s']}s = {split['rps']} req/s, "
              f"p50 {p50} ms, p99 recommend/search/events {p99} ms")


def run(args: argparse.Namespace) -> int:
    import httpx

    from shoprec.service import keeper

    settings = bench_settings(args.workdir)
    prepared = prepare(args, settings)
    inputs = sample_inputs(settings, args.workdir, args.seed, draw=args.draw)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    t0 = time.perf_counter()
    server = start_server(settings, port, args.workers, args.workdir / "server.log")
    startup_s = time.perf_counter() - t0
    admin = httpx.Client(base_url=base_url, headers={"X-API-Key": ADMIN_KEY}, timeout=30)
    try:
        version_before = admin.get("/readyz").json()["version"]
        print(f"server ready (workers and feed keeper) in {startup_s:.1f}s on {base_url}, version {version_before}, RSS {server_rss_mb(server)} MB; "
              f"{os.cpu_count()} CPUs (shared machine: figures are under contention)", flush=True)
        cpu_before = server_cpu_s(server)
        steady = run_phase(base_url, inputs, args, args.seed, "steady", args.workdir)
        cpu_after = server_cpu_s(server)
        # What serving a request costs the server, whatever the requests waited for.
        steady["server_cpu_ms_per_request"] = {
            kind: round(1000 * (cpu_after[kind] - cpu_before[kind]) / max(steady["requests"], 1), 3) for kind in cpu_after}
        steady["rss_mb"] = server_rss_mb(server)
        steady["pss_mb"] = server_rss_mb(server, proportional=True)
        steady["caches"] = cache_stats(admin)
        print_phase("steady", steady)
        result: dict[str, Any] = {k: steady[k] for k in ("rps", "errors", "p50_ms", "p99_ms", "rss_mb", "pss_mb")}
        result.update(requests=steady["requests"], server_cpu_ms_per_request=steady["server_cpu_ms_per_request"],
                      concurrency=args.concurrency, workers=args.workers, draw=args.draw,
                      scale=prepared.get("scale"), startup_s=round(startup_s, 1))
        if not args.skip_swap:
            build = admin.post("/v1/admin/build").json()
            build_id = build["id"]

            processes = args.workers + int(keeper.wanted(settings))
            peak_rss = {"rss": 0.0, "pss": 0.0}

            def swapped() -> bool:
                """The build failed, or every serving process (workers and keeper) serves its version."""
                for kind in peak_rss:  # asked every half second
                    peak_rss[kind] = max(peak_rss[kind], server_rss_mb(server, proportional=kind == "pss"))
                statuses = admin.get("/v1/admin/builds").json()["builds"]
                status = next((s for s in statuses if s["id"] == build_id), {"state": "running"})
                if status["state"] != "succeeded":
                    return status["state"] != "running"
                ready = admin.get("/readyz").json()
                return ready["version"] == status["version"] and (ready.get("serving_processes") or processes) >= processes

            link = Path(settings.artifacts_dir) / "current"
            current_before = os.readlink(link) if link.is_symlink() else None

            def published() -> bool:
                return link.is_symlink() and os.readlink(link) != current_before

            swap = run_phase(base_url, inputs, args, args.seed + 1, "swap", args.workdir, until=swapped,
                             published=published)
            swap["rss_mb"] = server_rss_mb(server)
            swap["pss_mb"] = server_rss_mb(server, proportional=True)
            swap["caches"] = cache_stats(admin)
            status = next(s for s in admin.get("/v1/admin/builds").json()["builds"] if s["id"] == build_id)
            version_after = admin.get("/readyz").json()["version"]
            took = f"in {status['seconds']}s" if status.get("seconds") is not None else f"for {swap['elapsed_s']}s so far"
            print_phase(f"during rebuild + swap (build {status['state']} {took}, "
                        f"{version_before} -> {version_after})", swap)
            complete = status["state"] == "succeeded" and swapped()
            print(f"   server memory at most {peak_rss['rss']} MB RSS, {peak_rss['pss']} MB PSS (shared pages counted once) "
                  f"during the phase, the build's process included")
            if status["state"] == "running":
                print(f"   the build was still running when the phase reached --swap-max-s; the service kept serving {version_before}")
            elif status["state"] != "succeeded":
                print(f"   build error (the service kept serving {version_before}): {(status.get('error') or '')[-400:]}")
            elif not complete:
                print(f"   the phase reached --swap-max-s before every serving process had swapped to {status['version']}")
            result["during_swap"] = {k: swap[k] for k in ("rps", "errors", "p50_ms", "p99_ms", "rss_mb", "pss_mb")}
            result["during_swap"].update(build_state=status["state"], build_s=status.get("seconds"), swapped=complete,
                                         peak_rss_mb=peak_rss["rss"], peak_pss_mb=peak_rss["pss"])
            for part, split in (swap.get("split") or {}).items():
                result["during_swap"][part] = {k: split[k] for k in ("rps", "requests", "elapsed_s", "p50_ms", "p99_ms")}
    finally:
        admin.close()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(result))
    return 0
