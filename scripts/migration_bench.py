#!/usr/bin/env python3
"""Live-migration benchmark (issue 14): QEMU's and swiftvmm's, side by side.

Both boot the same guest, firmware/multiboot/dirty-memory.c, with 1 GiB of
RAM in two scenarios:

  idle   `idle`: halts on the PIT, touches nothing after boot
  dirty  `ws=256M rate=64`: rewrites a 256 MiB working set at 64 MiB/s

and migrate it, running, to a fresh destination process over a Unix socket
and over TCP on loopback. The destination becomes the next source, so each
scenario boots once (QEMU's SeaBIOS runs emulated on a PVM host: tens of
seconds) and migrates `--rounds` times per transport. Before each migration
the guest must have printed a line on the current side; afterwards the
destination must print the next one: the lines of all sides together are
checked to be one unbroken sequence.

Per migration: total time, downtime, passes over memory (the first over all
of RAM, each pre-copy round, the final stop-and-copy), bytes on the wire.
  QEMU     from `query-migrate` once completed: `total-time`, `downtime`
           (measured by the source: VM stop to the end of the stream's
           completion; the destination may still be loading), passes =
           `ram.dirty-sync-count` (one bitmap sync before each pass: the
           first, each later round, the final one), `ram.transferred`.
           Default downtime limit (300 ms); max-bandwidth raised from
           QEMU's 32 MiB/s default to 10 GiB/s (swiftvmm has no limit by
           default); auto-converge on (swiftvmm always has it).
  swiftvmm from `GET /migrate` once `PUT /migrate` answered 204:
           `elapsed_ms`, `downtime_ms` (the source's pause to the
           destination's "running": its load included), passes = `round`
           (0: the first pass) + 2, `bytes_sent`.

Usage: migration_bench.py [--qemu] [--swiftvmm] [--rounds N]
           [--scenarios idle,dirty] [--transports unix,tcp]
           [--kernel ELF] [--swiftvmm-binary PATH] [--accel kvm|tcg]
           [--memory MiB] [--keep DIR] [--pin CPU] [--memory-backing memfd]
With neither --qemu nor --swiftvmm, both (and the ratios swiftvmm / QEMU).

The local live upgrade (swiftvmm only): `--swiftvmm --memory-backing memfd
--transports unix --memory 4096` runs the guests with memfd-backed RAM,
which a migration over a Unix socket hands over (SCM_RIGHTS) instead of
copying: passes 0, and the bytes sent are the machine state alone.
"""

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCENARIOS = {
    "idle": {"cmdline": "idle iters=0", "ready": "idle ", "label": "idle 1 GiB guest"},
    "dirty": {"cmdline": "ws=256M rate=64 iters=0", "ready": "pass ", "label": "1 GiB guest dirtying 64 MiB/s (256 MiB working set)"},
}
QEMU_BANDWIDTH = 10 << 30  # bytes/s


class Skip(Exception):
    """This side cannot be measured here; the message says why."""


PIN = None  # --pin: every VMM process runs on this host CPU


def pinned(arguments):
    return ["taskset", "-c", str(PIN)] + arguments if PIN is not None else arguments


def log(message):
    print(message, file=sys.stderr, flush=True)


def find_kernel(explicit):
    """The guest ELF: --kernel, or what `swift build` left in .build."""
    if explicit:
        return explicit
    found = glob.glob(os.path.join(ROOT, ".build", "**", "objects", "multiboot-dirty-memory.elf"), recursive=True)
    if not found:
        raise SystemExit("no multiboot-dirty-memory.elf under .build: run `swift build` first, or pass --kernel")
    return max(found, key=os.path.getmtime)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, what, alive=None):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"{what}: the process ended (status {alive.returncode})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def lines_with(path, prefix):
    return [line for line in read_text(path).splitlines() if line.startswith(prefix)]


def check_continuity(serial_files, prefix):
    """Whether the numbered lines (`idle N`, `pass N`) of all sides, in order,
    run 1, 2, 3, ... with none repeated or missing."""
    numbers = []
    for path in serial_files:
        for line in lines_with(path, prefix):
            numbers.append(int(line.split()[1]))
    return bool(numbers) and numbers == list(range(1, len(numbers) + 1)), len(numbers)


def terminate(process):
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# MARK: QEMU


class QMP:
    """A line-oriented QMP client over a Unix socket."""

    def __init__(self, path, timeout=30, alive=None):
        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError:
                s.close()
                return None

        self.sock = wait_for(connect, timeout, f"QMP socket {path}", alive)
        self.file = self.sock.makefile("rwb", buffering=0)
        greeting = json.loads(self.file.readline())
        if "QMP" not in greeting:
            raise RuntimeError(f"no QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def execute(self, command, **arguments):
        message = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.file.write((json.dumps(message) + "\n").encode())
        while True:
            line = self.file.readline()
            if not line:
                raise RuntimeError(f"QMP closed during {command}")
            reply = json.loads(line)
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error'].get('desc')}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class QEMUSide:
    name = "QEMU"

    def __init__(self, args, kernel, work):
        self.qemu = shutil.which("qemu-system-x86_64")
        if not self.qemu:
            raise Skip("qemu-system-x86_64 is not installed")
        self.accel = args.accel
        self.kernel = kernel
        self.work = work
        self.memory = args.memory
        self.count = 0
        version = subprocess.run([self.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()
        self.version = version[0] if version else "?"

    def start(self, cmdline, incoming=None):
        self.count += 1
        n = self.count
        serial = f"{self.work}/qemu-{n}.com1"
        qmp = f"{self.work}/qemu-{n}.qmp"
        arguments = [
            self.qemu, "-M", "pc", "-accel", self.accel, "-m", str(self.memory), "-display", "none", "-nodefaults",
            "-no-reboot", "-kernel", self.kernel, "-append", cmdline, "-serial", f"file:{serial}",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-qmp", f"unix:{qmp},server=on,wait=off",
        ]
        if incoming:
            arguments += ["-incoming", incoming]
        stderr = open(f"{self.work}/qemu-{n}.stderr", "w")
        process = subprocess.Popen(pinned(arguments), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        return {"process": process, "serial": serial, "qmp": QMP(qmp, 60, process), "stderr": stderr.name}

    def destination(self, cmdline, transport):
        if transport == "unix":
            path = f"{self.work}/qemu-migration-{self.count + 1}.sock"
            side = self.start(cmdline, incoming=f"unix:{path}")
            wait_for(lambda: os.path.exists(path), 30, "QEMU's incoming socket", side["process"])
            side["uri"] = f"unix:{path}"
        else:
            port = free_port()
            side = self.start(cmdline, incoming=f"tcp:127.0.0.1:{port}")
            side["uri"] = f"tcp:127.0.0.1:{port}"
        return side

    def migrate(self, source, destination):
        qmp = source["qmp"]
        qmp.execute("migrate-set-capabilities", capabilities=[{"capability": "auto-converge", "state": True}])
        qmp.execute("migrate-set-parameters", **{"max-bandwidth": QEMU_BANDWIDTH, "downtime-limit": 300})
        qmp.execute("migrate", uri=destination["uri"])
        deadline = time.monotonic() + 300
        while True:
            status = qmp.execute("query-migrate")
            if status.get("status") == "completed":
                break
            if status.get("status") in ("failed", "cancelled"):
                raise RuntimeError(f"QEMU migration {status.get('status')}: {status.get('error-desc', '')}")
            if time.monotonic() > deadline:
                raise RuntimeError("QEMU migration did not complete within 300 s")
            time.sleep(0.005)
        ram = status.get("ram", {})
        return {
            "total_ms": status.get("total-time"),
            "downtime_ms": status.get("downtime"),
            "setup_ms": status.get("setup-time"),
            "rounds": ram.get("dirty-sync-count"),
            "bytes": ram.get("transferred"),
            "zero_pages": ram.get("duplicate"),
            "pages": ram.get("normal"),
            "throttle": status.get("cpu-throttle-percentage", 0),
        }

    def stop(self, side):
        try:
            side["qmp"].execute("quit")
        except (RuntimeError, OSError):
            pass
        side["qmp"].close()
        try:
            side["process"].wait(20)
        except subprocess.TimeoutExpired:
            terminate(side["process"])

    def describe(self):
        return f"{self.version}, -M pc -accel {self.accel}, {self.memory} MiB"


# MARK: swiftvmm


class SwiftVMMSide:
    """swiftvmm's migration, as issue 14 specifies it: the source is a
    `swiftvmm serve --api-sock S` running the guest, the destination a
    `swiftvmm serve --incoming ADDR`, and `PUT /migrate` moves it."""

    name = "swiftvmm"

    def __init__(self, args, kernel, work):
        self.binary = args.swiftvmm_binary or os.path.join(ROOT, ".build", "release", "swiftvmm")
        if not os.access(self.binary, os.X_OK):
            raise Skip(f"no swiftvmm binary at {self.binary} (swift build -c release, or --swiftvmm-binary)")
        usage = subprocess.run([self.binary, "serve", "--help"], capture_output=True, text=True).stdout
        if "--incoming" not in usage:
            raise Skip(f"{self.binary} has no `serve --incoming` (the migration engine, issue 14, is not in this build)")
        self.kernel = kernel
        self.work = work
        self.memory = args.memory
        self.backing = args.memory_backing
        self.count = 0

    def start(self, cmdline, incoming=None):
        self.count += 1
        n = self.count
        serial = f"{self.work}/swiftvmm-{n}.com1"
        api = f"{self.work}/swiftvmm-{n}.api"
        stderr = open(f"{self.work}/swiftvmm-{n}.stderr", "w")
        if incoming:
            arguments = [self.binary, "serve", "--api-sock", api, "--incoming", incoming]
        else:
            config = f"{self.work}/swiftvmm-{n}.json"
            with open(config, "w") as f:
                json.dump(
                    {
                        "boot-source": {"kernel_image_path": self.kernel, "boot_args": cmdline},
                        "machine-config": {"vcpu_count": 1, "mem_size_mib": self.memory},
                    },
                    f,
                )
            arguments = [self.binary, "serve", "--api-sock", api, "--config-file", config]
        if self.backing:
            arguments += ["--memory-backing", self.backing]
        # As Firecracker does, `serve` writes the guest's COM1 to stdout.
        process = subprocess.Popen(pinned(arguments), stdin=subprocess.DEVNULL, stdout=open(serial, "w"), stderr=stderr)
        wait_for(lambda: os.path.exists(api), 30, "swiftvmm's API socket", process)
        return {"process": process, "serial": serial, "api": api, "stderr": stderr.name}

    def destination(self, cmdline, transport):
        if transport == "unix":
            address = f"unix:{self.work}/swiftvmm-migration-{self.count + 1}.sock"
        else:
            address = f"tcp:127.0.0.1:{free_port()}"
        side = self.start(cmdline, incoming=address)
        # Listening once it says so (probing a TCP port would be taken for the source).
        wait_for(lambda: "waiting for a migration" in read_text(side["stderr"]), 30, "swiftvmm's incoming listener", side["process"])
        side["uri"] = address
        return side

    def migrate(self, source, destination):
        body = json.dumps({"destination_url": destination["uri"], "downtime_ms": 300, "timeout_s": 300})
        status, text = http(source["api"], "PUT", "/migrate", body, timeout=330)
        if status != 204:
            raise RuntimeError(f"PUT /migrate answered {status}: {text}")
        status, text = http(source["api"], "GET", "/migrate")
        if status != 200:
            raise RuntimeError(f"GET /migrate answered {status}: {text}")
        progress = json.loads(text)
        return {
            "total_ms": progress.get("elapsed_ms"),
            "downtime_ms": progress.get("downtime_ms"),
            # Round 0 is the first pass over all of RAM; the stop-and-copy is one more.
            # A memfd hand-over has no pass over memory at all.
            "rounds": 0 if progress.get("memory_handed_over") else None if progress.get("round") is None else progress["round"] + 2,
            "bytes": progress.get("bytes_sent"),
            "zero_pages": progress.get("zero_pages"),
            "pages": progress.get("pages_sent"),
            "throttle": progress.get("throttle_percent", 0),
        }

    def stop(self, side):
        terminate(side["process"])

    def describe(self):
        return f"{self.binary}, {self.memory} MiB" + (f", --memory-backing {self.backing}" if self.backing else "")


def http(path, method, target, body=None, timeout=30):
    """One HTTP/1.1 request over a Unix socket: (status, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    payload = (body or "").encode()
    head = f"{method} {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {len(payload)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    s.sendall(head.encode() + b"\r\n" + payload)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        header, _, rest = data.partition(b"\r\n\r\n")
        if _ and b"content-length:" in header.lower():
            length = int(header.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            if len(rest) >= length:
                break
    s.close()
    header, _, rest = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ")[1]) if header else 0
    return status, rest.decode(errors="replace")


# MARK: The run


def run_side(side, scenario, transports, rounds):
    """Boots the scenario's guest once, then migrates it `rounds` times per
    transport, each destination becoming the next source. Returns
    {transport: [figures per migration]} and the continuity verdict."""
    spec = SCENARIOS[scenario]
    results = {t: [] for t in transports}
    serials = []
    source = side.start(spec["cmdline"])
    serials.append(source["serial"])
    try:
        log(f"{side.name} {scenario}: booting")
        wait_for(lambda: lines_with(source["serial"], spec["ready"]), 600, f"{side.name}'s guest's first line", source["process"])
        for transport in transports:
            for _ in range(rounds):
                destination = side.destination(spec["cmdline"], transport)
                serials.append(destination["serial"])
                try:
                    figures = side.migrate(source, destination)
                except Exception:
                    side.stop(destination)
                    raise
                side.stop(source)
                source = destination
                wait_for(
                    lambda: lines_with(source["serial"], spec["ready"]), 60, "the destination's first line", source["process"]
                )
                log(f"{side.name} {scenario} {transport}: {figures}")
                results[transport].append(figures)
    finally:
        side.stop(source)
    continuous, count = check_continuity(serials, spec["ready"])
    return results, continuous, count


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qemu", action="store_true", help="QEMU only (with --swiftvmm: both)")
    parser.add_argument("--swiftvmm", action="store_true", help="swiftvmm only (with --qemu: both)")
    parser.add_argument("--rounds", type=int, default=3, help="migrations per scenario and transport (default 3)")
    parser.add_argument("--scenarios", default="idle,dirty")
    parser.add_argument("--transports", default="unix,tcp")
    parser.add_argument("--kernel", help="the dirty-memory guest ELF (default: the one `swift build` made)")
    parser.add_argument("--swiftvmm-binary", help="default .build/release/swiftvmm")
    parser.add_argument("--accel", default="kvm", help="QEMU accelerator (default kvm)")
    parser.add_argument("--memory", type=int, default=1024, help="guest RAM in MiB (default 1024)")
    parser.add_argument("--memory-backing", help="swiftvmm's guest RAM: memfd hands it over on unix (the local live upgrade)")
    parser.add_argument("--keep", help="keep serial logs and QEMU/swiftvmm stderr in this directory")
    parser.add_argument(
        "--pin",
        type=int,
        help="run every VMM process (both sides, QEMU and swiftvmm alike) on this host CPU: a source and a destination "
        "on different CPUs see different KVM_GET_SUPPORTED_CPUID (leaf 1 EBX and leaf 0xB EDX carry the calling CPU's APIC id)",
    )
    args = parser.parse_args()
    global PIN
    PIN = args.pin
    scenarios = [s for s in args.scenarios.split(",") if s]
    transports = [t for t in args.transports.split(",") if t]
    if not set(scenarios) <= set(SCENARIOS) or not set(transports) <= {"unix", "tcp"} or args.rounds < 1:
        parser.error("scenarios: idle,dirty; transports: unix,tcp; rounds >= 1")
    both = args.qemu == args.swiftvmm
    kernel = find_kernel(args.kernel)
    work = args.keep or tempfile.mkdtemp(prefix="migration-bench-")
    os.makedirs(work, exist_ok=True)

    sides = []
    for wanted, kind in ((both or args.qemu, QEMUSide), (both or args.swiftvmm, SwiftVMMSide)):
        if not wanted:
            continue
        try:
            sides.append(kind(args, kernel, work))
        except Skip as reason:
            print(f"{kind.name}: SKIPPED: {reason}")

    print(f"live migration, guest {os.path.relpath(kernel, ROOT)}, {args.rounds} migration(s) per transport; medians")
    if PIN is not None:
        print(f"  every VMM process pinned to host CPU {PIN}")
    for side in sides:
        print(f"  {side.name}: {side.describe()}")
    table = {}
    try:
        for scenario in scenarios:
            for side in sides:
                try:
                    results, continuous, count = run_side(side, scenario, transports, args.rounds)
                except (RuntimeError, OSError, json.JSONDecodeError) as error:
                    print(f"{side.name} {scenario}: FAILED: {error} (logs in {work})")
                    continue
                table[(side.name, scenario)] = results
                verdict = "one unbroken sequence" if continuous else "BROKEN (lines missing or repeated)"
                print(f"  {side.name} {scenario}: guest output over all sides: {count} lines, {verdict}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    header = f"{'':10} {'':9} {'':5} {'total ms':>9} {'downtime ms':>12} {'passes':>7} {'MiB sent':>9} {'throttle %':>11}"
    for scenario in scenarios:
        label = SCENARIOS[scenario]["label"]
        if args.memory != 1024:
            label = label.replace("1 GiB", f"{args.memory} MiB")
        print(f"\n{label}:")
        print(header)
        for transport in transports:
            rows = {}
            for side in sides:
                results = table.get((side.name, scenario))
                if not results:
                    continue
                runs = results[transport]
                row = {k: median([r[k] for r in runs]) for k in ("total_ms", "downtime_ms", "rounds", "bytes")}
                row["throttle"] = max((r.get("throttle") or 0) for r in runs)
                rows[side.name] = row
                mib = None if row["bytes"] is None else row["bytes"] / (1 << 20)
                print(
                    f"{side.name:10} {scenario:9} {transport:5} {fmt(row['total_ms'], '9.1f')} "
                    f"{fmt(row['downtime_ms'], '12.1f')} {fmt(row['rounds'], '7.0f')} {fmt(mib, '9.1f')} {row['throttle']:>11}"
                )
            if "QEMU" in rows and "swiftvmm" in rows:
                q, s = rows["QEMU"], rows["swiftvmm"]

                def ratio(key):
                    return None if not q[key] or s[key] is None else s[key] / q[key]

                print(
                    f"{'ratio':10} {scenario:9} {transport:5} {fmt(ratio('total_ms'), '9.2f')} "
                    f"{fmt(ratio('downtime_ms'), '12.2f')} {fmt(ratio('rounds'), '7.2f')} {fmt(ratio('bytes'), '9.2f')}"
                    "   (swiftvmm / QEMU)"
                )


if __name__ == "__main__":
    main()
