#!/usr/bin/env python3
"""Times a VMM's boot by the milestones on its serial output (its stdout).

    boot_milestones.py run [options] -- COMMAND [ARG...]
    boot_milestones.py summary [--timeout S] RESULTS.jsonl
    boot_milestones.py --self-test

`run` starts COMMAND (its own process group, stdin /dev/null) and reads its
stdout unbuffered. Time zero is taken just before the process is created; each
milestone's time is the monotonic time at which the read that completed its
first occurrence returned:

    first_byte   the first byte of output
    banner       the kernel banner "Linux version "
    ready        the line SWIFTVMM-LINUX-READY (at the start of a line)
    exit         the process's exit

(--milestone NAME=REGEX adds more; REGEX is a Python bytes regex. A bzImage's
decompressor prints "Decompressing Linux... Booting the kernel" only with
CONFIG_X86_VERBOSE_BOOTUP, which Debian's kernel leaves off, so there is no
milestone for it.)

The process is killed (SIGTERM to the VMM, then SIGTERM and SIGKILL to the
group) at --timeout, or as soon as its stderr matches --stop-on-stderr (default
"KVM internal error": QEMU pauses the VM then instead of exiting); milestones
not seen by then are null. stdout is copied to --log, stderr to --stderr-log.
One JSON object per run is appended to --json (or printed).

Memory, for --rss-comm NAME (the process in COMMAND's tree whose
/proc/PID/comm is NAME, e.g. swiftvmm or qemu-system-x86, or COMMAND itself):
every --sample-interval seconds, and once right after the ready marker, it
reads /proc/PID/status (VmRSS, VmHWM) and /proc/PID/smaps. Guest RAM is an
anonymous mapping (no file) whose size is the guest memory size given with
--guest-memory (swiftvmm: one MAP_NORESERVE mapping of exactly --memory; QEMU:
the RAM block, same size; a mapping up to 4 MiB larger is accepted for
alignment). Its Rss is the guest-touched memory. Reported:
    guest_rss_kib       guest-touched memory at the last sample before exit
                        that still found the mapping
    vm_hwm_kib          the peak RSS the kernel recorded (VmHWM) at that sample
    overhead_kib        max over samples of VmRSS - guest RSS: the VMM's own part
    hwm_minus_guest_kib VmHWM - guest RSS (an upper bound of the same)
The sampling misses the last < interval seconds before exit; guest-touched
memory only grows in these guests (no balloon), so the last sample is close.
QEMU's own part includes the copies of the kernel and initrd it keeps to
reload them on reset (with a 66 MB PVH vmlinux, ~50 MB more than a bzImage).
--time-maxrss wraps COMMAND in `/usr/bin/time -f %M` (if installed) and reports
its peak RSS (KiB) as time_maxrss_kib. A swiftvmm `--stats` line on stderr
("swiftvmm: stats: N exits, guest ran X ms, peak RSS Y KiB") is parsed into
stats.

`summary` reads the JSON lines and prints, per VMM (the --name of each run),
the median of each milestone over the runs that reached it ("not reached in
Ns" when none did; "(k/n runs)" when only some did), the medians of the memory
figures, and the ratio swiftvmm/qemu of each milestone when both have one.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional

DEFAULT_MILESTONES = [
    ("first_byte", None),
    ("banner", rb"Linux version "),
    ("ready", rb"(?m)^SWIFTVMM-LINUX-READY"),
]
DEFAULT_STOP_ON_STDERR = rb"KVM internal error[^\n]*"
STATS_RE = re.compile(r"swiftvmm: stats: (\d+) exits, guest ran ([\d.]+) ms, peak RSS (\d+) KiB")
# How far back to search when new bytes arrive: a milestone split across reads
# is still found, without rescanning the whole log each time.
OVERLAP = 4096


class MilestoneTracker:
    """Records the time of the first occurrence of each milestone in a byte stream."""

    def __init__(self, milestones: list[tuple[str, Optional[bytes]]]):
        self.names = [name for name, _ in milestones]
        self.patterns = {name: (re.compile(p) if p is not None else None) for name, p in milestones}
        self.times: dict[str, Optional[float]] = {name: None for name in self.names}
        self.buffer = bytearray()
        self.total = 0

    def feed(self, chunk: bytes, t: float) -> list[str]:
        """Adds bytes read at time t; returns the milestones they completed."""
        if not chunk:
            return []
        start = max(0, len(self.buffer) - OVERLAP)
        self.buffer += chunk
        self.total += len(chunk)
        reached = []
        for name in self.names:
            if self.times[name] is not None:
                continue
            pattern = self.patterns[name]
            if pattern is None or pattern.search(self.buffer, start):
                self.times[name] = t
                reached.append(name)
        # Keep only what a later search needs (and the start, for '^').
        if len(self.buffer) > 4 * OVERLAP:
            del self.buffer[: len(self.buffer) - 2 * OVERLAP]
            # After trimming, position 0 is not a line start unless it follows '\n'.
            self.buffer[0:0] = b"\x00"
        return reached


def parse_status(text: str) -> dict[str, int]:
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def guest_rss_from_smaps(text: str, guest_bytes: int) -> tuple[Optional[int], list[str]]:
    """Sum of Rss (KiB) of the anonymous mappings sized like guest RAM."""
    total = None
    chosen = []
    header = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    current = None
    for line in text.splitlines():
        m = header.match(line)
        if m:
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            size = end - start
            path = m.group(4).strip()
            anonymous = path == "" or path.startswith("[anon")
            current = (line, anonymous and "rw" in m.group(3) and guest_bytes <= size <= guest_bytes + (4 << 20))
            continue
        if current and current[1] and line.startswith("Rss:"):
            total = (total or 0) + int(line.split()[1])
            chosen.append(current[0].split()[0])
            current = None
    return total, chosen


def read_text(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def process_tree(pid: int) -> list[int]:
    result, stack = [], [pid]
    while stack:
        p = stack.pop()
        result.append(p)
        for task in os.listdir(f"/proc/{p}/task") if os.path.isdir(f"/proc/{p}/task") else []:
            children = read_text(f"/proc/{p}/task/{task}/children") or ""
            stack.extend(int(c) for c in children.split())
    return result


def find_process(root: int, comm: Optional[str], wrapped: bool = False) -> Optional[int]:
    if not comm:
        if not wrapped:
            return root
        # COMMAND runs under /usr/bin/time: its only child is the real command.
        children = (read_text(f"/proc/{root}/task/{root}/children") or "").split()
        return int(children[0]) if children else None
    for p in process_tree(root):
        name = (read_text(f"/proc/{p}/comm") or "").strip()
        if name == comm[:15]:
            return p
    return None


class MemorySampler:
    def __init__(self, root: int, comm: Optional[str], guest_bytes: Optional[int], wrapped: bool = False):
        self.root, self.comm, self.guest_bytes, self.wrapped = root, comm, guest_bytes, wrapped
        self.pid: Optional[int] = None
        self.last: dict = {}
        self.overhead_max: Optional[int] = None
        self.samples = 0

    def sample(self) -> None:
        if self.pid is None:
            self.pid = find_process(self.root, self.comm, self.wrapped)
            if self.pid is None:
                return
        status = read_text(f"/proc/{self.pid}/status")
        if status is None:
            return
        values = parse_status(status)
        if "VmRSS" not in values:
            return  # a zombie
        sample = {"vm_rss_kib": values["VmRSS"], "vm_hwm_kib": values.get("VmHWM")}
        if self.guest_bytes:
            smaps = read_text(f"/proc/{self.pid}/smaps")
            if smaps is None:
                return
            guest, mappings = guest_rss_from_smaps(smaps, self.guest_bytes)
            if guest is None:
                # Guest RAM already unmapped (the VMM is exiting): keep the last figure.
                guest, mappings = self.last.get("guest_rss_kib"), self.last.get("guest_mappings", [])
            sample["guest_rss_kib"] = guest
            sample["guest_mappings"] = mappings
            if guest is not None:
                overhead = values["VmRSS"] - guest
                self.overhead_max = overhead if self.overhead_max is None else max(self.overhead_max, overhead)
        self.last = sample
        self.samples += 1

    def report(self) -> dict:
        out = dict(self.last)
        out["samples"] = self.samples
        out["overhead_kib"] = self.overhead_max
        if out.get("vm_hwm_kib") is not None and out.get("guest_rss_kib") is not None:
            out["hwm_minus_guest_kib"] = out["vm_hwm_kib"] - out["guest_rss_kib"]
        return out


def kill_group(proc: subprocess.Popen, target: Optional[int] = None) -> None:
    # The VMM itself first, so that a /usr/bin/time around it still reports.
    if target is not None and target != proc.pid:
        try:
            os.kill(target, signal.SIGTERM)
            proc.wait(timeout=2.0)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def run(
    command: list[str],
    timeout: float,
    milestones: list[tuple[str, Optional[bytes]]],
    log_path: Optional[str] = None,
    stderr_path: Optional[str] = None,
    rss_comm: Optional[str] = None,
    guest_bytes: Optional[int] = None,
    sample_interval: float = 0.5,
    time_maxrss: bool = False,
    echo: bool = False,
    stop_on_stderr: Optional[bytes] = DEFAULT_STOP_ON_STDERR,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    tracker = MilestoneTracker(milestones)
    time_file = None
    if time_maxrss and os.access("/usr/bin/time", os.X_OK):
        fd, time_file = tempfile.mkstemp(prefix="boot-milestones-time.")
        os.close(fd)
        command = ["/usr/bin/time", "-o", time_file, "-f", "%M"] + command
    log = open(log_path, "wb") if log_path else None
    err = open(stderr_path, "w+b") if stderr_path else tempfile.TemporaryFile()
    t0 = clock()
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    sampler = MemorySampler(proc.pid, rss_comm, guest_bytes, time_file is not None) if (rss_comm or guest_bytes) else None
    fd = proc.stdout.fileno()

    def vmm_pid() -> Optional[int]:
        return sampler.pid if sampler and sampler.pid else find_process(proc.pid, rss_comm, time_file is not None)
    deadline = t0 + timeout
    next_sample = t0
    timed_out = False
    stopped = None
    stop_re = re.compile(stop_on_stderr) if stop_on_stderr else None
    eof = False
    while not eof:
        now = clock()
        if now >= next_sample:
            if sampler:
                sampler.sample()
            if stop_re:
                # A VMM that reports a fatal guest error and then waits (QEMU
                # pauses the VM on a KVM internal error) is stopped here.
                found = stop_re.search(os.pread(err.fileno(), 1 << 20, 0))
                if found:
                    stopped = found.group(0).decode("utf-8", "replace")
                    break
            next_sample = now + sample_interval
        if now >= deadline:
            timed_out = True
            break
        wait = min(deadline, next_sample) - now
        ready, _, _ = select.select([fd], [], [], max(0.0, wait))
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        t = clock()
        if not chunk:
            eof = True
            break
        if log:
            log.write(chunk)
            log.flush()
        if echo:
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        reached = tracker.feed(chunk, t - t0)
        if sampler and "ready" in reached:
            sampler.sample()
    if timed_out or stopped:
        kill_group(proc, vmm_pid())
    else:
        try:
            proc.wait(timeout=max(0.0, deadline - clock()))
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_group(proc, vmm_pid())
    end = clock() - t0
    if not timed_out and not stopped:
        tracker.times["exit"] = end
    else:
        tracker.times["exit"] = None
    if log:
        log.close()
    err.seek(0)
    stderr_text = err.read().decode("utf-8", "replace")
    err.close()
    result: dict = {
        "command": command,
        "timeout_s": timeout,
        "timed_out": timed_out,
        "stopped_on_stderr": stopped,
        "exit_status": None if (timed_out or stopped) else proc.returncode,
        "elapsed_s": round(end, 6),
        "output_bytes": tracker.total,
        "milestones": {k: (None if v is None else round(v, 6)) for k, v in tracker.times.items()},
    }
    m = None
    for m in STATS_RE.finditer(stderr_text):
        pass
    if m:
        result["stats"] = {"exits": int(m.group(1)), "guest_ran_ms": float(m.group(2)), "peak_rss_kib": int(m.group(3))}
    if time_file:
        text = (read_text(time_file) or "").strip().splitlines()
        os.unlink(time_file)
        if text and text[-1].strip().isdigit():
            result["time_maxrss_kib"] = int(text[-1].strip())
    if sampler:
        result["memory"] = sampler.report()
        if guest_bytes and result["memory"].get("guest_rss_kib") is not None:
            guest = result["memory"]["guest_rss_kib"]
            if "stats" in result:
                result["stats"]["peak_rss_minus_guest_kib"] = result["stats"]["peak_rss_kib"] - guest
            if "time_maxrss_kib" in result:
                result["time_maxrss_minus_guest_kib"] = result["time_maxrss_kib"] - guest
    return result


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (e.g. 256M)")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2).upper()]


# --- summary -------------------------------------------------------------------

MEMORY_FIGURES = [
    ("swiftvmm --stats peak RSS", lambda r: r.get("stats", {}).get("peak_rss_kib")),
    ("/usr/bin/time %M peak RSS", lambda r: r.get("time_maxrss_kib")),
    ("VmHWM (last /proc sample)", lambda r: r.get("memory", {}).get("vm_hwm_kib")),
    ("guest-touched RAM (smaps Rss of guest mapping)", lambda r: r.get("memory", {}).get("guest_rss_kib")),
    ("--stats peak RSS - guest-touched", lambda r: r.get("stats", {}).get("peak_rss_minus_guest_kib")),
    ("time %M - guest-touched", lambda r: r.get("time_maxrss_minus_guest_kib")),
    ("VmHWM - guest-touched", lambda r: r.get("memory", {}).get("hwm_minus_guest_kib")),
    ("max sampled VmRSS - guest-touched", lambda r: r.get("memory", {}).get("overhead_kib")),
]


def median_or_none(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def outcome(r: dict) -> str:
    if r.get("timed_out"):
        return "timed out"
    if r.get("stopped_on_stderr"):
        return f"stopped on stderr '{r['stopped_on_stderr']}'"
    return f"exit {r.get('exit_status')}"


def summarize(results: list[dict], timeout: Optional[float] = None) -> str:
    by_vmm: dict[str, list[dict]] = {}
    for r in results:
        by_vmm.setdefault(r.get("name", "?"), []).append(r)
    names = [name for name, _ in DEFAULT_MILESTONES] + ["exit"]
    for r in results:
        for k in r.get("milestones", {}):
            if k not in names:
                names.append(k)
    lines = []
    medians: dict[str, dict[str, Optional[float]]] = {}
    for vmm, runs in by_vmm.items():
        medians[vmm] = {}
        exits = sorted({outcome(r) for r in runs})
        lines.append(f"{vmm}: {len(runs)} run(s); outcome: {', '.join(exits)}")
        for name in names:
            values = [r["milestones"].get(name) for r in runs]
            reached = [v for v in values if v is not None]
            med = median_or_none(reached)
            medians[vmm][name] = med
            if med is None:
                limit = timeout if timeout is not None else max((r.get("timeout_s", 0) for r in runs), default=0)
                text = f"not reached in {limit:g}s"
            else:
                text = f"{med:10.3f} s"
                if len(reached) < len(values):
                    text += f"  ({len(reached)}/{len(values)} runs)"
                if len(reached) > 1:
                    text += f"  [min {min(reached):.3f}, max {max(reached):.3f}]"
            lines.append(f"  {name:<12} {text}")
        for label, get in MEMORY_FIGURES:
            med = median_or_none([get(r) for r in runs])
            if med is not None:
                lines.append(f"  {label:<48} {med:10.0f} KiB")
    if "swiftvmm" in medians and "qemu" in medians:
        lines.append("ratio swiftvmm/qemu (medians; < 1 means swiftvmm is faster):")
        for name in names:
            a, b = medians["swiftvmm"].get(name), medians["qemu"].get(name)
            if a is not None and b is not None and b > 0:
                lines.append(f"  {name:<12} {a / b:8.3f}")
            else:
                lines.append(f"  {name:<12}        -  (not reached by both)")
    return "\n".join(lines)


# --- self-test ------------------------------------------------------------------


def self_test() -> int:
    failures = []
    checks = [0]

    def check(cond: bool, what: str) -> None:
        checks[0] += 1
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    # Tracker on canned chunks: milestones split across reads, '^' anchoring.
    t = MilestoneTracker(DEFAULT_MILESTONES)
    t.feed(b"Probing EDD ... ok\r\n", 1.0)
    check(t.times["first_byte"] == 1.0, "first byte at the first chunk")
    t.feed(b"[    0.000000] Linux ver", 1.7)
    check(t.times["banner"] is None, "half a banner is not the banner")
    t.feed(b"sion 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\r\n", 2.0)
    check(t.times["banner"] == 2.0, "banner split across two reads")
    t.feed(b"Kernel command line: console=ttyS0 xSWIFTVMM-LINUX-READY\r\n", 3.0)
    check(t.times["ready"] is None, "marker not at a line start is ignored")
    t.feed(b"SWIFTVMM-LINUX-", 4.0)
    t.feed(b"READY\r\nswiftvmm-init: mode=poweroff\r\n", 5.0)
    check(t.times["ready"] == 5.0, "marker split across reads, at a line start")
    t.feed(b"Linux version again\n", 6.0)
    check(t.times["banner"] == 2.0, "only the first occurrence counts")

    # Trimming keeps matching correct on long outputs.
    t = MilestoneTracker(DEFAULT_MILESTONES)
    for i in range(2000):
        t.feed(b"x" * 37 + b"\n", float(i))
    t.feed(b"SWIFTVMM-LINUX-READY\n", 9999.0)
    check(t.times["ready"] == 9999.0, "marker found after 74 KB of output")
    check(t.times["banner"] is None, "absent banner stays null")
    t = MilestoneTracker(DEFAULT_MILESTONES)
    t.feed(b"a" * 20000, 1.0)
    t.feed(b"SWIFTVMM-LINUX-READY\n", 2.0)
    check(t.times["ready"] is None, "no line start after a trimmed long line")

    # /proc parsing.
    check(parse_status("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n") == {"VmHWM": 2048, "VmRSS": 1024}, "status parsing")
    smaps = (
        "7f0000000000-7f0010000000 rw-p 00000000 00:00 0 \nSize: 262144 kB\nRss: 30000 kB\n"
        "7f0010000000-7f0010200000 rw-p 00000000 00:00 0 \nSize: 2048 kB\nRss: 100 kB\n"
        "55550000-55560000 r-xp 00000000 08:01 123 /usr/bin/qemu\nSize: 64 kB\nRss: 64 kB\n"
        "7f0020000000-7f0030000000 r--p 00000000 08:01 9 /big/file\nSize: 262144 kB\nRss: 5 kB\n"
    )
    guest, maps = guest_rss_from_smaps(smaps, 256 << 20)
    check(guest == 30000 and maps == ["7f0000000000-7f0010000000"], "guest mapping picked by size among anonymous rw mappings")
    check(guest_rss_from_smaps(smaps, 1 << 30)[0] is None, "no mapping of that size: unknown")
    check(parse_size("256M") == 256 << 20 and parse_size("1G") == 1 << 30 and parse_size("4096") == 4096, "sizes")

    # A real process with canned output: order, timing, exit, stats, timeout.
    script = (
        "import sys,time,os\n"
        "os.write(1,b'Linux ver'); time.sleep(0.3); os.write(1,b'sion 6.1\\n')\n"
        "time.sleep(0.3); os.write(1,b'SWIFTVMM-LINUX-READY\\n')\n"
        "sys.stderr.write('swiftvmm: stats: 1234 exits, guest ran 56.7 ms, peak RSS 8910 KiB\\n')\n"
        "x = bytearray(8 << 20); time.sleep(0.6)\n"
        "sys.exit(3)\n"
    )
    r = run([sys.executable, "-c", script], 20, DEFAULT_MILESTONES, guest_bytes=8 << 20, sample_interval=0.1, time_maxrss=True)
    ms = r["milestones"]
    check(not r["timed_out"] and r["exit_status"] == 3, "exit status passed through")
    check(
        all(ms[k] is not None for k in ("first_byte", "banner", "ready", "exit")), "all milestones reached: " + json.dumps(ms)
    )
    if all(ms[k] is not None for k in ("first_byte", "banner", "ready", "exit")):
        check(ms["first_byte"] < ms["banner"] <= ms["ready"] < ms["exit"], "milestones in order")
        check(0.25 <= ms["banner"] - ms["first_byte"] <= 2.0, "banner ~0.3 s after the first byte")
    check(r.get("stats", {}).get("exits") == 1234 and r["stats"]["peak_rss_kib"] == 8910, "--stats line parsed")
    if os.access("/usr/bin/time", os.X_OK):
        check(isinstance(r.get("time_maxrss_kib"), int) and r["time_maxrss_kib"] > 8192, "/usr/bin/time %M read")
    mem = r.get("memory", {})
    check(mem.get("samples", 0) > 0 and mem.get("vm_rss_kib", 0) > 8192, "RSS sampled through the time wrapper: " + json.dumps(mem))
    check((mem.get("guest_rss_kib") or 0) >= 8000, "the 8 MiB buffer found in smaps as 'guest' memory")

    r = run([sys.executable, "-c", "import os,time; os.write(1,b'hi'); time.sleep(30)"], 1.0, DEFAULT_MILESTONES)
    check(r["timed_out"] and r["milestones"]["first_byte"] is not None, "first byte seen before the timeout")
    check(r["milestones"]["banner"] is None and r["milestones"]["exit"] is None, "unreached milestones are null")
    check(r["elapsed_s"] < 5, "killed at the timeout")

    script = "import sys,time; sys.stderr.write('KVM internal error. Suberror: 1\\n'); sys.stderr.flush(); time.sleep(30)"
    r = run([sys.executable, "-c", script], 20, DEFAULT_MILESTONES, sample_interval=0.1)
    check(r["stopped_on_stderr"] == "KVM internal error. Suberror: 1" and r["elapsed_s"] < 5, "stopped on a KVM internal error")
    check(not r["timed_out"] and r["exit_status"] is None and r["milestones"]["exit"] is None, "a stopped run has no exit")

    # Summary text: medians, partial runs, not reached, ratio.
    runs = [
        {"name": "swiftvmm", "timeout_s": 600, "timed_out": False, "exit_status": 0,
         "milestones": {"first_byte": 1.0, "banner": 2.0, "ready": 10.0, "exit": 11.0},
         "stats": {"peak_rss_kib": 40000, "peak_rss_minus_guest_kib": 10000}},
        {"name": "swiftvmm", "timeout_s": 600, "timed_out": False, "exit_status": 0,
         "milestones": {"first_byte": 3.0, "banner": 4.0, "ready": None, "exit": 13.0}},
        {"name": "qemu", "timeout_s": 600, "timed_out": True, "exit_status": None,
         "milestones": {"first_byte": 4.0, "banner": 8.0, "ready": None, "exit": None}},
    ]
    text = summarize(runs)
    print(text)
    check("first_byte        2.000 s" in text, "median of two runs")
    check("ready            10.000 s  (1/2 runs)" in text, "partial runs counted")
    check("ready        not reached in 600s" in text, "not reached in Ns")
    check("first_byte      0.500" in text and "banner          0.375" in text, "ratios swiftvmm/qemu")
    check("10000 KiB" in text, "memory figure shown")

    print(f"self-test: {checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv[1:2] == ["--self-test"]:
        return self_test()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("run", help="run COMMAND and time its milestones")
    p.add_argument("--name", default=None, help="label of the run (swiftvmm, qemu): used by summary and ratios")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the process is killed (default 600)")
    p.add_argument("--log", help="file for the process's stdout (the serial output)")
    p.add_argument("--stderr-log", help="file for the process's stderr")
    p.add_argument("--json", help="append the result as one JSON line to this file (default: print it)")
    p.add_argument("--milestone", action="append", default=[], metavar="NAME=REGEX", help="an extra milestone")
    p.add_argument("--rss-comm", help="sample the memory of the process in the tree with this /proc comm")
    p.add_argument("--guest-memory", type=parse_size, help="guest RAM size, to find its mapping in smaps (256M)")
    p.add_argument("--sample-interval", type=float, default=0.5, help="seconds between memory samples (default 0.5)")
    p.add_argument("--time-maxrss", action="store_true", help="wrap COMMAND in /usr/bin/time -f %%M if installed")
    p.add_argument("--progress", metavar="LABEL", help="with --json, also print a one-line result starting with LABEL")
    p.add_argument("--stop-on-stderr", default=DEFAULT_STOP_ON_STDERR.decode(), metavar="REGEX",
                   help="stop the run when stderr matches (default: KVM internal error; '' for never)")
    p.add_argument("--echo", action="store_true", help="also copy the serial output to stdout")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    s = sub.add_parser("summary", help="medians and ratios of JSON results")
    s.add_argument("--timeout", type=float, default=None, help="the timeout to name for unreached milestones")
    s.add_argument("results")
    args = parser.parse_args(argv[1:])
    if args.action == "summary":
        with open(args.results) as f:
            results = [json.loads(line) for line in f if line.strip()]
        print(summarize(results, args.timeout))
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs -- COMMAND")
    milestones = list(DEFAULT_MILESTONES)
    for spec in args.milestone:
        name, sep, regex = spec.partition("=")
        if not sep or not name:
            parser.error(f"--milestone {spec!r}: expected NAME=REGEX")
        milestones.append((name, regex.encode()))
    if args.time_maxrss and not shutil.which("time") and not os.access("/usr/bin/time", os.X_OK):
        print("boot_milestones: /usr/bin/time is not installed; no %M figure", file=sys.stderr)
    result = run(
        command, args.timeout, milestones, args.log, args.stderr_log, args.rss_comm, args.guest_memory,
        args.sample_interval, args.time_maxrss, args.echo, args.stop_on_stderr.encode() or None,
    )
    result["name"] = args.name or os.path.basename(command[0])
    line = json.dumps(result)
    if args.json:
        with open(args.json, "a") as f:
            f.write(line + "\n")
        if args.progress is not None:
            status = outcome(result)
            ms = ", ".join(f"{k} " + ("-" if v is None else f"{v:.3f}s") for k, v in result["milestones"].items())
            print(f"  {args.progress} {result['name']:<8} {status}: {ms}", flush=True)
    else:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
