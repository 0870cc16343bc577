"""HTTP load generation for `make bench`: wrk when installed, else an aiohttp generator in its own process.

Both report the same `LoadResult` (requests, req/s, latency percentiles in ms, non-2xx answers and
socket errors). Run the Python generator alone with
`python -m allinone.bench_load URL [-H 'Name: value'] [-c 32] [-d 15]` (prints one JSON line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# wrk prints this line from the Lua `done` hook; exact percentiles come from wrk's HdrHistogram.
_MARKER = "BENCH_RESULT"
_HEADERS_ENV = "SIGMASIGHT_BENCH_LOAD_HEADERS"
_WRK_SCRIPT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "status_errors": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d}\n',
    "%MARKER%", summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    e.status, e.connect, e.read, e.write, e.timeout))
end
""".replace("%MARKER%", _MARKER)


@dataclass
class LoadResult:
    """One timed load run against one URL."""

    tool: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    loadavg_1m: float = 0.0
    # Average cores in use during the run per component (server processes, PostgreSQL backends of the
    # bench database, the load generator, everything else on the machine) and the machine's busy share.
    cpu_cores: dict[str, float] = field(default_factory=dict)
    machine_busy_pct: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadSeries:
    """Warm-up plus N measured runs and their medians."""

    label: str
    url: str
    runs: list[LoadResult]

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def non_2xx(self) -> int:
        return sum(r.non_2xx for r in self.runs)

    @property
    def socket_errors(self) -> int:
        return sum(r.socket_errors for r in self.runs)

    @property
    def tool(self) -> str:
        return self.runs[0].tool if self.runs else "-"

    def cpu_cores(self) -> dict[str, float]:
        """Median cores in use per component over the runs."""
        names = [k for k in self.runs[0].cpu_cores] if self.runs else []
        return {k: statistics.median(r.cpu_cores.get(k, 0.0) for r in self.runs) for k in names}

    def cpu_us_per_request(self) -> dict[str, float]:
        """Median CPU microseconds per request per component over the runs."""
        names = [k for k in self.runs[0].cpu_cores] if self.runs else []
        return {
            k: statistics.median(r.cpu_cores.get(k, 0.0) * 1e6 / r.rps if r.rps else math.nan for r in self.runs)
            for k in names
        }

    @property
    def machine_busy_pct(self) -> float | None:
        values = [r.machine_busy_pct for r in self.runs if r.machine_busy_pct is not None]
        return statistics.median(values) if values else None


def wrk_path() -> str | None:
    """The wrk binary, when installed (nothing is ever installed from here)."""
    return shutil.which("wrk")


def choose_tool(preference: str) -> str:
    """`wrk` or `python` for preference `auto` | `wrk` | `python`."""
    if preference == "python":
        return "python"
    if wrk_path():
        return "wrk"
    if preference == "wrk":
        raise SystemExit("--loadgen wrk was asked for but wrk is not installed")
    return "python"


def run_wrk(
    url: str, headers: dict[str, str], *, connections: int, duration: float, threads: int, log: Path | None = None
) -> LoadResult:
    """One wrk run (`--latency`, exact percentiles from the Lua `done` hook)."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    # Headers go into the script (a 0600 temp file), so the token does not show in the process list.
    lines = [f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}" for name, value in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write("\n".join(lines) + "\n" + _WRK_SCRIPT)
        script = fh.name
    try:
        cmd = [
            binary,
            f"-t{max(1, min(threads, connections))}",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            script,
            url,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)  # noqa: S603
    finally:
        os.unlink(script)
    if log is not None:
        with log.open("a") as fh:
            fh.write(f"$ wrk ... {url}\n{proc.stdout}{proc.stderr}\n")
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(_MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    raw = json.loads(line[len(_MARKER) :])
    seconds = raw["duration_us"] / 1e6
    socket_errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return LoadResult(
        tool="wrk",
        connections=connections,
        duration_s=round(seconds, 3),
        requests=int(raw["requests"]),
        rps=raw["requests"] / seconds if seconds > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        # wrk counts answers outside 2xx/3xx as status errors; these GETs never redirect.
        non_2xx=int(raw["status_errors"]),
        socket_errors=int(socket_errors),
    )


def run_python(
    url: str, headers: dict[str, str], *, connections: int, duration: float, log: Path | None = None
) -> LoadResult:
    """One run of the aiohttp generator in a child process (so it does not share the caller's CPU time)."""
    cmd = [sys.executable, "-m", "allinone.bench_load", url, "-c", str(connections), "-d", str(duration)]
    # Headers travel in the environment, so the token does not show in the process list.
    env = {**os.environ, _HEADERS_ENV: json.dumps(headers)}
    proc = subprocess.run(  # noqa: S603 - argv built here
        cmd, capture_output=True, text=True, timeout=duration + 60, check=False, env=env
    )
    if log is not None:
        with log.open("a") as fh:
            fh.write(f"$ python -m allinone.bench_load ... {url}\n{proc.stdout}{proc.stderr}\n")
    if proc.returncode != 0:
        raise RuntimeError(f"python load generator failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return LoadResult(**data)


CpuProbe = Callable[[], float]  # cumulative CPU seconds of one component


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 100


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc; 0 when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _clock_ticks()


def _cpu_by_process(matches: Callable[[bytes], bool]) -> dict[int, float]:
    """CPU seconds of every process whose command line (NUL-separated /proc cmdline) `matches`, by pid."""
    out: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if matches(title):
            out[int(entry.name)] = process_cpu_seconds(int(entry.name))
    return out


def _cpu_of_processes(matches: Callable[[bytes], bool]) -> float:
    """CPU seconds of every process whose command line `matches`, summed."""
    return sum(_cpu_by_process(matches).values())


def postgres_backend_cpu_by_pid(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to `database` (matched by its process title)."""
    marker = f" {database} ".encode()
    return _cpu_by_process(lambda title: title.startswith(b"postgres: ") and marker in title)


def postgres_backends_cpu_seconds(database: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to `database`, summed."""
    return sum(postgres_backend_cpu_by_pid(database).values())


def rabbitmq_cpu_seconds() -> float:
    """CPU seconds of the local RabbitMQ server (its Erlang VM, `beam.smp`); 0 when not found."""
    return _cpu_of_processes(lambda title: b"beam.smp" in title.split(b"\0", 1)[0] and b"rabbit" in title)


def machine_busy_seconds() -> float:
    """Busy (non-idle) CPU seconds of the whole machine since boot."""
    return _machine_cpu()[0]


def machine_ticks() -> list[int]:
    """The whole machine's clock ticks since boot from /proc/stat, in its order: user, nice, system,
    idle, iowait, irq, softirq, steal ([] when unreadable)."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        return [int(v) for v in first[:8]]
    except (OSError, IndexError, ValueError):
        return []


def _machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    ticks = machine_ticks()
    if not ticks:
        return (0.0, 0.0)
    idle = ticks[3] + ticks[4]  # idle + iowait
    total = sum(ticks)
    return ((total - idle) / _clock_ticks(), total / _clock_ticks())


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_load(
    tool: str,
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    log: Path | None = None,
    probes: dict[str, CpuProbe] | None = None,
) -> LoadResult:
    """One timed run with the chosen tool; records the 1-minute load average at its end and the CPU
    used meanwhile by each probed component, the load generator and the rest of the machine."""
    probes = probes or {}
    before = {name: probe() for name, probe in probes.items()}
    gen_before = _children_cpu()
    busy_before, total_before = _machine_cpu()
    wall = time.perf_counter()
    if tool == "wrk":
        result = run_wrk(url, headers, connections=connections, duration=duration, threads=threads, log=log)
    else:
        result = run_python(url, headers, connections=connections, duration=duration, log=log)
    wall = time.perf_counter() - wall
    busy_after, total_after = _machine_cpu()
    result.loadavg_1m = round(os.getloadavg()[0], 2)
    if wall > 0:
        cores = {name: max(0.0, probe() - before[name]) / wall for name, probe in probes.items()}
        cores["load generator"] = max(0.0, _children_cpu() - gen_before) / wall
        machine_busy = (busy_after - busy_before) / wall
        cores["other processes"] = max(0.0, machine_busy - sum(cores.values()))
        result.cpu_cores = {k: round(v, 3) for k, v in cores.items()}
        if total_after > total_before:
            result.machine_busy_pct = round(100 * (busy_after - busy_before) / (total_after - total_before), 1)
    return result


def measure(
    label: str,
    tool: str,
    url: str,
    headers: dict[str, str],
    *,
    connections: int,
    warmup: float,
    duration: float,
    runs: int,
    threads: int = 1,
    log: Path | None = None,
    say: Callable[[str], None] = print,
    probes: dict[str, CpuProbe] | None = None,
) -> LoadSeries:
    """Warm-up (discarded), then `runs` timed runs of `duration` seconds each."""
    if warmup > 0:
        run_load(tool, url, headers, connections=connections, duration=warmup, threads=threads, log=log)
    results: list[LoadResult] = []
    for i in range(runs):
        result = run_load(
            tool, url, headers, connections=connections, duration=duration, threads=threads, log=log, probes=probes
        )
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in result.cpu_cores.items())
        say(
            f"  {label} run {i + 1}/{runs}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms, non-2xx {result.non_2xx}, socket errors {result.socket_errors}, "
            f"load {result.loadavg_1m}; cores: {cpu}"
        )
        results.append(result)
    return LoadSeries(label, url, results)


# --- the aiohttp generator (child process) -------------------------------------------------------


def _percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def _generate(url: str, headers: dict[str, str], connections: int, duration: float) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections, force_close=False, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        started = time.perf_counter()
        deadline = started + duration

        async def worker() -> None:
            nonlocal errors
            clock = time.perf_counter
            while clock() < deadline:
                t0 = clock()
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        status = resp.status
                except (aiohttp.ClientError, TimeoutError):
                    errors += 1
                    continue
                latencies.append(clock() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    ms = [v * 1000 for v in latencies]
    return LoadResult(
        tool="python-aiohttp",
        connections=connections,
        duration_s=round(elapsed, 3),
        requests=len(latencies),
        rps=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=_percentile(ms, 50),
        p90_ms=_percentile(ms, 90),
        p99_ms=_percentile(ms, 99),
        max_ms=ms[-1] if ms else math.nan,
        non_2xx=sum(n for code, n in statuses.items() if not 200 <= code < 300),
        socket_errors=errors,
    )


def _parse_headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for value in values:
        name, _, rest = value.partition(":")
        headers[name.strip()] = rest.strip()
    return headers


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the child process: one run, one JSON line on stdout."""
    parser = argparse.ArgumentParser(description="aiohttp closed-loop load generator (wrk fallback)")
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=15.0)
    parser.add_argument("-H", "--header", action="append", default=[])
    args = parser.parse_args(argv)
    headers = {**json.loads(os.environ.get(_HEADERS_ENV, "{}")), **_parse_headers(args.header)}
    job = _generate(args.url, headers, args.connections, args.duration)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        result = asyncio.run(job)
    else:
        result = uvloop.run(job)
    sys.stdout.write(json.dumps(result.to_dict()) + "\n")


if __name__ == "__main__":
    main()
