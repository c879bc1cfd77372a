#!/usr/bin/env python3
"""End-to-end benchmarks of bunq-onboard against its simulator (Python 3.11+, stdlib only).

    python3 bench/run.py                      # every section, default sizes, writes bench/results.md
    python3 bench/run.py --sections latency,cpu --no-build
    python3 bench/run.py --memory-rows 100000,1000000 --provision-memory-rows 100000,1000000

Sections:
  latency  latency-bound throughput: simulator --latency-ms 50 --no-rate-limits, --rate 0,
           --concurrency 8 / 32 / 128; rows/s against the ideal concurrency / latency
  rate     rate-bound throughput: simulator --post-limit 300/3 (100/s, bunq's 429 text);
           client --rate 100 (at the limit) and --rate 1000 (far above: the pacer must adapt)
  cpu      user+sys CPU of the client process per row: 50k rows, zero latency, no limits
  memory   peak RSS of validate / provision / a resume run (everything already provisioned)
  resume   time to load a big results file and skip every row
  micro    the criterion micro-benchmarks (cargo bench): signing, validation, ledger append

The simulator always runs as a separate process; CPU and memory figures are the client
process's own (GNU time, else os.wait4 rusage). The release binary is built once with
`cargo build --release` unless --no-build or --binary is given (CARGO_TARGET_DIR is honoured).
Figures depend on the machine: the table records nproc, the CPU model and the load average.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
API_KEY = "sandbox_benchmark_key_0123456789abcdef0123456789"
ALL_SECTIONS = ["latency", "rate", "cpu", "memory", "resume", "micro"]


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def target_dir() -> Path:
    env = os.environ.get("CARGO_TARGET_DIR")
    return Path(env) if env else REPO / "target"


def build_release() -> Path:
    log("cargo build --release")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    return target_dir() / "release" / "bunq-onboard"


def uuid_for(i: int) -> str:
    return f"00000000-0000-4000-8000-{i + 1:012x}"


def write_users(path: Path, rows: int) -> Path:
    """A users CSV of `rows` valid email rows with explicit, deterministic uuids."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("external_uuid,email,name,products\n")
        chunk = 50_000
        for start in range(0, rows, chunk):
            out.write(
                "".join(
                    f"{uuid_for(i)},user{i}@example.com,User {i},USER_VERIFIED\n"
                    for i in range(start, min(rows, start + chunk))
                )
            )
    return path


def write_provisioned_results(path: Path, rows: int) -> Path:
    """A compacted results file in which every row of write_users(rows) is provisioned, as a
    finished earlier run leaves it (synthesised: provisioning a million rows first would
    dominate the benchmark's run time)."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(
            "line,external_uuid,pointer_type,pointer_value,status,provision_id,error,attempts,updated_at\n"
        )
        chunk = 50_000
        for start in range(0, rows, chunk):
            out.write(
                "".join(
                    f"{i + 2},{uuid_for(i)},EMAIL,user{i}@example.com,provisioned,"
                    f"{4_000_001 + i},,1,{stamp}\n"
                    for i in range(start, min(rows, start + chunk))
                )
            )
    return path


class Sim:
    """A `bunq-onboard simulate` process on a free loopback port."""

    def __init__(self, binary: Path, args: list[str]):
        self.proc = subprocess.Popen(
            [str(binary), "simulate", "--listen", "127.0.0.1:0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            # A simulator given a key accepts only that key: let it accept the bench's.
            env=dict(os.environ, BUNQ_API_KEY=API_KEY),
        )
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"simulator did not start: {self.base_url!r}")
        self.origin = self.base_url.rsplit("/v1", 1)[0]

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.origin}/_sim/stats", timeout=10) as response:
            return json.load(response)

    cpu: float | None = None

    def stop(self) -> None:
        """SIGTERM, then reap the process with os.wait4 to learn its CPU time."""
        if self.proc.returncode is not None:
            return
        self.proc.terminate()
        deadline = time.monotonic() + 10
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.cpu = usage.ru_utime + usage.ru_stime
                return
            if time.monotonic() > deadline:
                self.proc.kill()
            time.sleep(0.05)

    def __enter__(self) -> "Sim":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class RunResult:
    code: int
    wall: float
    user: float
    sys: float
    maxrss_kib: int
    summary: dict = field(default_factory=dict)
    stderr: str = ""

    @property
    def cpu(self) -> float:
        return self.user + self.sys


TIME = shutil.which("time", path="/usr/bin:/bin")


def run_measured(argv: list[str], env: dict | None = None, cwd: Path | None = None) -> RunResult:
    """Runs one process and returns its own CPU time and peak RSS.

    Through GNU time when present: its child is forked from the small `time` process, so
    ru_maxrss is the benchmarked binary's alone. A child forked straight from this Python
    process would report Python's resident set as its peak (Linux keeps the pre-exec high
    water mark in ru_maxrss), which inflates small figures by tens of MiB."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile(
        "r", suffix=".time"
    ) as timing:
        full = [TIME, "-q", "-o", timing.name, "-f", "%e %U %S %M", *argv] if TIME else argv
        start = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        user, system, maxrss = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
        if TIME:
            fields = timing.read().split()
            if len(fields) >= 4:
                wall, user, system, maxrss = float(fields[-4]), float(fields[-3]), float(fields[-2]), int(fields[-1])
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    summary = {}
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except json.JSONDecodeError:
                pass
            break
    return RunResult(
        code=proc.returncode,
        wall=wall,
        user=user,
        sys=system,
        maxrss_kib=maxrss,
        summary=summary,
        stderr=stderr,
    )


def provision(
    binary: Path,
    sim: Sim,
    work: Path,
    users: Path,
    *,
    concurrency: int,
    rate: str,
    results: Path | None = None,
    extra: list[str] | None = None,
) -> RunResult:
    env = dict(os.environ, BUNQ_API_KEY=API_KEY)
    env.pop("RUST_LOG", None)
    argv = [
        str(binary),
        "provision",
        str(users),
        "--results",
        str(results or work / "results.csv"),
        "--base-url",
        sim.base_url,
        "--context",
        str(work / "context.json"),
        "--concurrency",
        str(concurrency),
        "--rate",
        rate,
        "--quiet",
        "--json",
        *(extra or []),
    ]
    result = run_measured(argv, env=env, cwd=work)
    if result.code != 0:
        raise RuntimeError(
            f"provision exited {result.code}: {result.summary}\n{result.stderr[-2000:]}"
        )
    return result


def fresh_dir(root: Path, name: str) -> Path:
    path = root / name
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


# --------------------------------------------------------------------------- sections


class Report:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def section(self, title: str, intro: str, header: list[str], rows: list[list[str]], notes: list[str]):
        lines = [f"### {title}", ""]
        if intro:
            lines += [intro, ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
        for note in notes:
            lines.append(f"- {note}")
        if notes:
            lines.append("")
        text = "\n".join(lines)
        self.parts.append(text)
        print(text, flush=True)


def section_latency(binary: Path, root: Path, args, report: Report) -> None:
    rows_out = []
    notes = []
    cores = os.cpu_count() or 1
    runs = [(8, 50, args.latency_rows_c8), (32, 50, args.latency_rows), (128, 50, args.latency_rows)]
    if args.latency_c1_rows > 0:
        runs.insert(0, (1, 50, args.latency_c1_rows))
    round_trip = None
    if args.latency_check_rows > 0:
        runs.append((128, 500, args.latency_check_rows))
    for concurrency, latency_ms, rows in runs:
        work = fresh_dir(root, f"latency-c{concurrency}-{latency_ms}ms")
        users = write_users(work / "users.csv", rows)
        log(f"latency: {rows} rows at --concurrency {concurrency}, simulator latency {latency_ms} ms")
        with Sim(binary, ["--latency-ms", str(latency_ms), "--no-rate-limits"]) as sim:
            result = provision(binary, sim, work, users, concurrency=concurrency, rate="0")
        elapsed = result.summary["elapsed_secs"]
        rate = rows / elapsed
        ideal = concurrency / (latency_ms / 1000)
        ratio = rate / ideal
        client_ms = result.cpu / rows * 1000
        sim_ms = (sim.cpu or 0.0) / rows * 1000
        ceiling = cores / ((client_ms + sim_ms) / 1000)
        if concurrency == 1:
            round_trip = elapsed / rows
        pipeline = f"{rate / (concurrency / round_trip):.3f}" if round_trip and latency_ms == 50 else "—"
        target = verdict(ratio >= 0.95) if concurrency >= 32 and latency_ms == 50 else "—"
        rows_out.append(
            [
                str(concurrency),
                str(latency_ms),
                f"{rows:,}",
                f"{elapsed:.1f}",
                f"{rate:,.0f}",
                f"{ideal:,.0f}",
                f"**{ratio:.3f}**",
                pipeline,
                f"{client_ms:.3f}",
                f"{sim_ms:.3f}",
                f"{ceiling:,.0f}",
                target,
            ]
        )
        shutil.rmtree(work)
    if args.latency_rows_c8 != args.latency_rows:
        notes.append(
            f"c=8 uses {args.latency_rows_c8:,} rows instead of {args.latency_rows:,}: "
            f"{args.latency_rows:,} rows at the ideal 160 rows/s take {args.latency_rows / 160:.0f} s."
        )
    notes.append(
        "elapsed is the engine's own `elapsed_secs` (from the --json summary): it includes reading "
        "the input twice (survey + run), one bulk reconciliation GET and compaction, but not "
        "connecting (installation, device-server, session)."
    )
    notes.append(
        f"CPU ceiling = {cores} cores / (client + simulator CPU per row): the most rows/s this "
        "machine could do if both processes had every core to themselves. Client and simulator "
        "each spend one RSA-2048 private-key operation per row (the client signs the request, "
        "the simulator signs the response, as bunq does), so on a small machine the benchmark, "
        "not the engine, becomes the bound once the ideal rate nears the ceiling."
    )
    if round_trip:
        notes.append(
            f"round trip at C=1: {round_trip * 1000:.1f} ms per row — the 50 ms of simulated latency "
            "plus the real cost of one request (client and simulator each sign and verify an "
            "RSA-2048 signature, HTTP, timer ticks). `vs C / round trip` compares each run with C "
            "copies of that single-request pipeline: how well the engine keeps C requests in flight."
        )
    if args.latency_check_rows > 0:
        notes.append(
            "the 500 ms row is a control: the same 128 requests in flight at a rate the CPU easily "
            "sustains, to tell the engine's scheduling apart from the machine's CPU."
        )
    report.section(
        "1. Latency-bound throughput",
        "Simulator `--latency-ms L --no-rate-limits`, client `--rate 0 --concurrency C`. "
        "Ideal = C / L.",
        [
            "concurrency",
            "latency ms",
            "rows",
            "elapsed s",
            "rows/s",
            "ideal rows/s",
            "ratio",
            "vs C / round trip at C=1",
            "client CPU ms/row",
            "sim CPU ms/row",
            "CPU ceiling rows/s",
            "target ≥ 0.95",
        ],
        rows_out,
        notes,
    )


def poll_progress(sim: Sim, stop: threading.Event, samples: list[tuple[float, int, int]], start: float):
    while not stop.is_set():
        try:
            stats = sim.stats()
            samples.append(
                (
                    time.perf_counter() - start,
                    stats.get("provisions_created", 0),
                    stats.get("rate_limited_by_endpoint", {}).get("POST partner-user-provision", stats.get("rate_limited", 0)),
                )
            )
        except OSError:
            pass
        stop.wait(0.1)


def rate_run(binary: Path, root: Path, name: str, rows: int, client_rate: str, concurrency: int):
    work = fresh_dir(root, name)
    users = write_users(work / "users.csv", rows)
    with Sim(binary, ["--post-limit", "300/3"]) as sim:
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        start = time.perf_counter()
        poller = threading.Thread(target=poll_progress, args=(sim, stop, samples, start), daemon=True)
        poller.start()
        result = provision(binary, sim, work, users, concurrency=concurrency, rate=client_rate)
        stop.set()
        poller.join()
        stats = sim.stats()
    return result, samples, stats


def time_to(samples, count: int) -> float | None:
    for t, created, _ in samples:
        if created >= count:
            return t
    return None


def steady_rate(samples, rows: int) -> float:
    """Provisions per second between 25 % and 95 % of the rows (after any convergence)."""
    a, b = time_to(samples, rows // 4), time_to(samples, rows * 95 // 100)
    if a is None or b is None or b <= a:
        return float("nan")
    return (rows * 95 // 100 - rows // 4) / (b - a)


def section_rate(binary: Path, root: Path, args, report: Report) -> None:
    limit = 100.0
    rows = args.rate_rows
    rows_out = []
    notes = []
    for client_rate in ("100", "1000"):
        log(f"rate: {rows} rows, --rate {client_rate} against --post-limit 300/3")
        result, samples, stats = rate_run(binary, root, f"rate-{client_rate}", rows, client_rate, args.rate_concurrency)
        s = result.summary
        posts = s["post_requests"]
        too_many = s["rate_limited"]
        sim_429 = stats.get("rate_limited_by_endpoint", {}).get("POST partner-user-provision", 0)
        overall = rows / s["elapsed_secs"]
        steady = steady_rate(samples, rows)
        # Time from the first provision to the 1000th.
        first_created = next((t for t, c, _ in samples if c > 0), None)
        t1000 = time_to(samples, min(1000, rows))
        to_1000 = (t1000 - first_created) if (t1000 and first_created is not None) else float("nan")
        ok = steady / limit >= 0.95 and too_many < 0.01 * posts
        rows_out.append(
            [
                client_rate,
                f"{rows:,}",
                f"{overall:.1f}",
                f"{steady:.1f}",
                f"{steady / limit:.3f}",
                f"{to_1000:.1f}",
                f"{posts:,}",
                f"{too_many} (sim: {sim_429})",
                f"{100 * too_many / max(posts, 1):.2f} %",
                verdict(ok),
            ]
        )
    notes.append(
        "steady rows/s: provisions created per second between 25 % and 95 % of the rows, from "
        "`/_sim/stats` polled every 100 ms; overall: rows / the engine's elapsed_secs."
    )
    notes.append(
        "time to 1000: seconds from the first provision created to the 1000th (at exactly the "
        "limit that is 10 s)."
    )
    notes.append(f"client --concurrency {args.rate_concurrency}; simulator latency 0.")
    report.section(
        "2. Rate-bound throughput",
        "Simulator `--post-limit 300/3` (100 POSTs/s, sliding window, bunq's 429 text). "
        "Target: steady rate ≥ 0.95 of the limit, 429s < 1 % of POSTs.",
        ["--rate", "rows", "overall rows/s", "steady rows/s", "steady / limit", "time to 1000 s", "POSTs", "429s", "429 share", "target"],
        rows_out,
        notes,
    )


def section_cpu(binary: Path, root: Path, args, report: Report, signing_ns: float | None) -> None:
    rows = args.cpu_rows
    rows_out = []
    results = {}
    for n in (args.cpu_baseline_rows, rows):
        work = fresh_dir(root, f"cpu-{n}")
        users = write_users(work / "users.csv", n)
        log(f"cpu: {n} rows, zero latency, no limits, --rate 0")
        with Sim(binary, ["--no-rate-limits"]) as sim:
            results[n] = provision(binary, sim, work, users, concurrency=args.cpu_concurrency, rate="0")
    big, small = results[rows], results[args.cpu_baseline_rows]
    _provision_rss[rows] = big
    per_row = big.cpu / rows * 1000
    marginal = (big.cpu - small.cpu) / (rows - args.cpu_baseline_rows) * 1000
    rows_out.append(
        [
            f"{rows:,}",
            f"{big.user:.2f}",
            f"{big.sys:.2f}",
            f"{per_row:.3f}",
            f"{marginal:.3f}",
            f"{small.cpu:.2f}",
            f"{rows / big.summary['elapsed_secs']:,.0f}",
            verdict(per_row <= 0.3),
        ]
    )
    notes = [
        f"fixed cost: CPU of a {args.cpu_baseline_rows}-row run (start-up, RSA key generation for "
        "the installation, connecting); marginal = (CPU(N) - CPU(small)) / (N - small).",
        f"client --concurrency {args.cpu_concurrency}; CPU is the client process's own user+sys "
        "time (GNU time, or os.wait4 rusage without it); the simulator is a separate process.",
    ]
    if signing_ns is not None:
        notes.append(
            f"signing: aws-lc-rs RSA-2048 PKCS#1 v1.5 SHA-256 + Base64, "
            f"{signing_ns / 1e6:.3f} ms per signature (criterion `signing` bench), i.e. "
            f"{100 * signing_ns / 1e6 / marginal:.0f} % of the marginal CPU per row."
        )
    report.section(
        "3. CPU per row",
        "Simulator `--no-rate-limits`, latency 0; client `--rate 0`. Target ≤ 0.3 ms per row.",
        ["rows", "user s", "sys s", "ms/row (total)", "ms/row (marginal)", "fixed CPU s", "rows/s", "target ≤ 0.3 ms"],
        rows_out,
        notes,
    )


_provision_rss: dict[int, "RunResult"] = {}


def section_memory(binary: Path, root: Path, args, report: Report) -> None:
    limit_kib = 64 * 1024
    rows_out = []
    notes = []
    env = dict(os.environ)
    env.pop("RUST_LOG", None)
    for n in args.memory_rows:
        work = fresh_dir(root, f"validate-{n}")
        users = write_users(work / "users.csv", n)
        log(f"memory: validate {n} rows")
        result = run_measured([str(binary), "validate", str(users), "--json"], env=env)
        if result.code != 0:
            raise RuntimeError(f"validate exited {result.code}: {result.stderr[-2000:]}")
        rows_out.append(
            ["validate", f"{n:,}", mib(result.maxrss_kib), f"{result.wall:.1f}", verdict(result.maxrss_kib < limit_kib)]
        )
        shutil.rmtree(work)
    for n, result in sorted(_provision_rss.items()):
        if n not in args.provision_memory_rows:
            rows_out.append(
                ["provision (the section 3 run)", f"{n:,}", mib(result.maxrss_kib), f"{result.wall:.1f}", verdict(result.maxrss_kib < limit_kib)]
            )
    for n in args.provision_memory_rows:
        work = fresh_dir(root, f"provision-{n}")
        users = write_users(work / "users.csv", n)
        log(f"memory: provision {n} rows (zero latency, no limits)")
        with Sim(binary, ["--no-rate-limits"]) as sim:
            result = provision(binary, sim, work, users, concurrency=args.cpu_concurrency, rate="0")
        rows_out.append(
            ["provision", f"{n:,}", mib(result.maxrss_kib), f"{result.wall:.1f}", verdict(result.maxrss_kib < limit_kib)]
        )
        shutil.rmtree(work)
    for n in args.memory_rows:
        result, _ = resume_run(binary, root, n)
        rows_out.append(
            ["provision, resume (all done)", f"{n:,}", mib(result.maxrss_kib), f"{result.wall:.1f}", verdict(result.maxrss_kib < limit_kib)]
        )
    if max(args.provision_memory_rows) < max(args.memory_rows):
        notes.append(
            f"provision is measured up to {max(args.provision_memory_rows):,} rows, not "
            f"{max(args.memory_rows):,}: at the measured zero-latency rate a million provisions "
            "take longer than the whole benchmark budget (use --provision-memory-rows to go further)."
        )
    by_command: dict[str, list[tuple[int, float]]] = {}
    for row in rows_out:
        command = row[0].split(" (")[0]
        by_command.setdefault(command, []).append((int(row[1].replace(",", "")), float(row[2].split()[0])))
    for command, points in by_command.items():
        if len(points) > 1:
            (n0, m0), (n1, m1) = min(points), max(points)
            flat = m1 <= m0 * 1.1
            notes.append(
                f"flat? {command}: {m0:.1f} MiB at {n0:,} rows → {m1:.1f} MiB at {n1:,} rows "
                f"({(m1 - m0) * 1024 * 1024 / max(n1 - n0, 1):.0f} bytes per extra row): "
                + ("flat" if flat else "**not flat**")
            )
    notes.append(
        "peak RSS = maximum resident set size of the client process alone (GNU time %M; the "
        "simulator is a separate process)."
    )
    report.section(
        "4. Memory (peak RSS)",
        "Target: under 64 MiB, and flat from 100k to 1M rows.",
        ["command", "rows", "peak RSS", "wall s", "target < 64 MiB"],
        rows_out,
        notes,
    )


_resume_cache: dict[int, tuple[RunResult, Path]] = {}


def resume_run(binary: Path, root: Path, n: int) -> tuple[RunResult, Path]:
    """Provision against a results file in which all n rows are already provisioned."""
    if n in _resume_cache:
        return _resume_cache[n]
    work = fresh_dir(root, f"resume-{n}")
    users = write_users(work / "users.csv", n)
    results = write_provisioned_results(work / "results.csv", n)
    log(f"resume: {n} rows, all already provisioned")
    with Sim(binary, ["--no-rate-limits"]) as sim:
        result = provision(binary, sim, work, users, concurrency=32, rate="0", results=results)
    s = result.summary
    if s.get("already_provisioned") != n or s.get("post_requests") != 0:
        raise RuntimeError(f"resume run did not skip every row: {s}")
    _resume_cache[n] = (result, work)
    return result, work


def section_resume(binary: Path, root: Path, args, report: Report) -> None:
    rows_out = []
    for n in args.memory_rows:
        result, _ = resume_run(binary, root, n)
        rows_out.append(
            [
                f"{n:,}",
                f"{result.summary['elapsed_secs']:.2f}",
                f"{result.wall:.2f}",
                f"{result.cpu:.2f}",
                f"{n / result.summary['elapsed_secs']:,.0f}",
                mib(result.maxrss_kib),
            ]
        )
    report.section(
        "5. Resume cost",
        "A second run over N rows that a results file (N rows, all `provisioned`) already "
        "holds: load the resume index, read and validate the input twice, skip every row, no POST.",
        ["rows", "engine elapsed s", "process wall s", "CPU s", "rows skipped/s", "peak RSS"],
        rows_out,
        ["process wall includes start-up and connecting to the simulator (installation, session)."],
    )


def criterion_estimate(group_dir: Path) -> float | None:
    estimates = group_dir / "new" / "estimates.json"
    if not estimates.exists():
        return None
    data = json.loads(estimates.read_text())
    return data["mean"]["point_estimate"]


def find_criterion(name_fragment: str) -> Path | None:
    base = target_dir() / "criterion"
    if not base.exists():
        return None
    for bench_json in sorted(base.rglob("new/benchmark.json")):
        info = json.loads(bench_json.read_text())
        full = info.get("full_id", "")
        if name_fragment in full:
            return bench_json.parent.parent
    return None


MICRO = [
    # (bench target, id fragment, label, elements per iteration)
    ("signing", "sign_base64 provision body", "sign_base64 (RSA-2048 PKCS#1 v1.5 SHA-256 + Base64), per signature", 1),
    ("signing", "to_body + sign_base64", "provision body JSON + signature, per row", 1),
    ("validate", "UserReader per row/email rows", "UserReader read + validate, per email row", 10_000),
    ("validate", "UserReader per row/phone rows", "UserReader read + validate, per phone row", 10_000),
    ("ledger", "LedgerWriter::append", "LedgerWriter::append (write + flush), per row", 1),
]


def run_micro(args) -> dict[str, float]:
    """Runs the criterion benches; returns ns per element by id fragment."""
    if not args.skip_cargo_bench:
        for bench in sorted({b for b, *_ in MICRO}):
            log(f"cargo bench --bench {bench}")
            done = subprocess.run(
                ["cargo", "bench", "--quiet", "--bench", bench],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"cargo bench --bench {bench} failed:\n{done.stderr[-4000:]}")
    found = {}
    for _, fragment, _, elements in MICRO:
        directory = find_criterion(fragment)
        if directory is not None:
            ns = criterion_estimate(directory)
            if ns is not None:
                found[fragment] = ns / elements
    return found


def section_micro(micro: dict[str, float], report: Report) -> None:
    rows = []
    for bench, fragment, label, _ in MICRO:
        ns = micro.get(fragment)
        rows.append([f"`{bench}`", label, "n/a" if ns is None else f"{ns / 1000:.2f} µs"])
    report.section(
        "Micro-benchmarks (criterion, `cargo bench`)",
        "Mean time per element; `--warm-up-time 1 --measurement-time 3`.",
        ["bench", "what", "time"],
        rows,
        [],
    )


# --------------------------------------------------------------------------- main


def machine_lines(args) -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- nproc: {os.cpu_count()}; CPU: {model}",
        f"- kernel: {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- load average at start: {load}",
        f"- binary: {args.binary}",
    ]


def parse_sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", default=",".join(ALL_SECTIONS), help="comma list of: " + ", ".join(ALL_SECTIONS))
    parser.add_argument("--binary", type=Path, help="use this bunq-onboard binary (implies --no-build)")
    parser.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    parser.add_argument("--latency-rows", type=int, default=20_000, help="rows at concurrency 32 and 128")
    parser.add_argument("--latency-rows-c8", type=int, default=2_500, help="rows at concurrency 8")
    parser.add_argument("--latency-c1-rows", type=int, default=200, help="rows of the C=1 round-trip run (0 = skip)")
    parser.add_argument(
        "--latency-check-rows", type=int, default=2_500, help="rows of the c=128, 500 ms control run (0 = skip)"
    )
    parser.add_argument("--rate-rows", type=int, default=3_000, help="rows per rate-bound run")
    parser.add_argument("--rate-concurrency", type=int, default=32)
    parser.add_argument("--cpu-rows", type=int, default=50_000)
    parser.add_argument("--cpu-baseline-rows", type=int, default=100)
    parser.add_argument("--cpu-concurrency", type=int, default=32)
    parser.add_argument("--memory-rows", type=parse_sizes, default=[100_000, 1_000_000], help="validate / resume sizes")
    parser.add_argument(
        "--provision-memory-rows",
        type=parse_sizes,
        default=[20_000],
        help="provision sizes, beside the cpu section's run (the defaults keep the whole table under 10 minutes)",
    )
    parser.add_argument("--skip-cargo-bench", action="store_true", help="micro: only read earlier criterion results")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.md", help="markdown output ('-' = none)")
    parser.add_argument("--workdir", type=Path, help="keep inputs and results here instead of a temp dir")
    parser.add_argument("--note", action="append", default=[], help="a line to add under the machine description")
    args = parser.parse_args()

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(ALL_SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.binary is None:
        args.binary = target_dir() / "release" / "bunq-onboard"
        if not args.no_build:
            args.binary = build_release()
    if not args.binary.exists():
        parser.error(f"{args.binary} does not exist; build it or pass --binary")

    started = time.perf_counter()
    header = ["## bunq-onboard benchmarks", "", *machine_lines(args), *[f"- {n}" for n in args.note], ""]
    print("\n".join(header), flush=True)
    report = Report()
    micro: dict[str, float] = {}
    if "micro" in sections or "cpu" in sections:
        # The signing cost feeds the CPU section; run (or read) the criterion results first.
        micro = run_micro(args) if "micro" in sections else run_micro(argparse.Namespace(skip_cargo_bench=True))

    root_context = tempfile.TemporaryDirectory(prefix="bunq-onboard-bench-") if args.workdir is None else None
    root = Path(root_context.name) if root_context else args.workdir
    root.mkdir(parents=True, exist_ok=True)
    try:
        if "latency" in sections:
            section_latency(args.binary, root, args, report)
        if "rate" in sections:
            section_rate(args.binary, root, args, report)
        if "cpu" in sections:
            section_cpu(args.binary, root, args, report, micro.get("sign_base64 provision body"))
        if "memory" in sections:
            section_memory(args.binary, root, args, report)
        if "resume" in sections:
            section_resume(args.binary, root, args, report)
        if "micro" in sections:
            section_micro(micro, report)
    finally:
        if root_context:
            root_context.cleanup()
    total = time.perf_counter() - started
    footer = f"_Total benchmark time: {total / 60:.1f} min; load average at the end: " + ", ".join(
        f"{x:.2f}" for x in os.getloadavg()
    ) + "._"
    print(footer)
    if str(args.out) != "-":
        args.out.parent.mkdir(parents=True, exist_ok=True)
        command = "python3 bench/run.py " + " ".join(sys.argv[1:])
        text = "\n".join(header) + "\n" + f"Command: `{command.strip()}`\n\n" + "\n".join(report.parts) + "\n" + footer + "\n"
        args.out.write_text(text)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
