#!/usr/bin/env python3
"""Start-up cost of one or more swiftvmm binaries, measured in one run with
their rounds interleaved (so that a busy host hurts each alike).

For each binary:
  serve: `swiftvmm serve --api-sock S` from spawn to the socket accepting a
         connection: wall ms, and CPU ms of all its threads by then
         (/proc/PID/task/*/schedstat);
  run:   `swiftvmm run GUEST` on a one-instruction real-mode guest
         (`out %al, $0xf4`: debug-exit) from spawn to exit: wall ms, and
         user+system CPU ms (wait4's rusage).
Prints the median and min-max of each.

usage: scripts/startup-bench.py [--rounds N] BINARY [BINARY ...]
"""
import os
import socket
import statistics
import sys
import tempfile
import time


def cpu_ms_of(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass
    return total / 1e6


def serve_once(binary, directory):
    path = os.path.join(directory, "api.sock")
    if os.path.exists(path):
        os.unlink(path)
    devnull = os.open(os.devnull, os.O_RDWR)
    start = time.monotonic_ns()
    pid = os.posix_spawn(binary, [binary, "serve", "--api-sock", path], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    os.close(devnull)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            break
        except OSError:
            s.close()
            time.sleep(0.00005)
    wall = (time.monotonic_ns() - start) / 1e6
    cpu = cpu_ms_of(pid)
    s.close()
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return wall, cpu


def run_once(binary, guest):
    devnull = os.open(os.devnull, os.O_RDWR)
    start = time.monotonic_ns()
    pid = os.posix_spawn(binary, [binary, "run", guest], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1),
                                       (os.POSIX_SPAWN_DUP2, devnull, 2)])
    os.close(devnull)
    _, status, usage = os.wait4(pid, 0)
    wall = (time.monotonic_ns() - start) / 1e6
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def summary(values):
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main():
    arguments = sys.argv[1:]
    rounds = 20
    if arguments[:1] == ["--rounds"]:
        rounds = int(arguments[1])
        arguments = arguments[2:]
    binaries = arguments
    with tempfile.TemporaryDirectory(prefix="swvm-startup-") as directory:
        guest = os.path.join(directory, "exit.bin")
        with open(guest, "wb") as f:
            f.write(b"\xe6\xf4")  # out %al, $0xf4
        results = {b: {"serve": [], "serve_cpu": [], "run": [], "run_cpu": []} for b in binaries}
        for _ in range(rounds):
            for binary in binaries:
                wall, cpu = serve_once(binary, directory)
                results[binary]["serve"].append(wall)
                results[binary]["serve_cpu"].append(cpu)
                wall, cpu = run_once(binary, guest)
                results[binary]["run"].append(wall)
                results[binary]["run_cpu"].append(cpu)
    print(f"median (min-max) of {rounds} interleaved rounds, ms")
    for binary in binaries:
        r = results[binary]
        print(binary)
        print(f"  serve to socket accepting: wall {summary(r['serve'])}  CPU {summary(r['serve_cpu'])}")
        print(f"  run one-instruction guest: wall {summary(r['run'])}  CPU {summary(r['run_cpu'])}")


if __name__ == "__main__":
    main()
