#!/usr/bin/env python3
"""Times the test kernel's boot on swiftvmm: process start to "Run /init",
to the shell prompt, a typed command's round trip, and `poweroff -f` to exit.

    scripts/time-test-kernel.py SWIFTVMM [--cpus N] [--image vmlinux|bzImage]
                                [--cmdline BASE] [--append ARGS] [--cpuid-mask LIST] [--timeout S]

The command line is TestKernel.commandLine's plus --append;
--cmdline replaces that base (e.g. "console=ttyS0 panic=-1" for ACPI on).

The kernel directory comes from SWIFTVMM_TEST_KERNEL or
scripts/make-test-kernel.sh --print-path. Prints one line per milestone and
the VMM's exit status; the serial log goes to --log (default: none)."""
import argparse, os, re, select, signal, subprocess, sys, time

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument("swiftvmm")
p.add_argument("--cpus", type=int, default=1)
p.add_argument("--image", default="vmlinux")
p.add_argument("--cmdline", default="console=ttyS0 panic=-1")
p.add_argument("--append", default="")
p.add_argument("--cpuid-mask", default="")
p.add_argument("--timeout", type=float, default=600)
p.add_argument("--log")
a = p.parse_args()
kernel = os.environ.get("SWIFTVMM_TEST_KERNEL") or subprocess.run(
    [os.path.join(here, "make-test-kernel.sh"), "--print-path"], capture_output=True, text=True, check=True).stdout.strip()
cmdline = a.cmdline + " " + a.append
start = time.monotonic()
proc = subprocess.Popen([a.swiftvmm, "run", "--kernel", os.path.join(kernel, a.image), "--initrd",
                         os.path.join(kernel, "initramfs.cpio"), "--cmdline", cmdline.strip(), "--memory", "128M",
                         "--cpus", str(a.cpus)] + (["--cpuid-mask", a.cpuid_mask] if a.cpuid_mask else []), stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
out = b""
# The serial log is written as it arrives, so an interrupted run leaves it too.
log = open(a.log, "wb", buffering=0) if a.log else None
signal.signal(signal.SIGTERM, lambda *_: (proc.kill(), sys.exit(143)))
def wait_for(text, limit, since=0):
    global out
    deadline = time.monotonic() + limit
    while text not in out[since:]:
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None and not select.select([proc.stdout], [], [], 0)[0]:
            return None
        r, _, _ = select.select([proc.stdout], [], [], min(left, 1))
        if r:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk and proc.poll() is not None:
                return None
            out += chunk
            if log:
                log.write(chunk)
    return time.monotonic() - start
def report(name, t):
    print(f"{name:24s} {'not reached' if t is None else f'{t:7.2f} s'}", flush=True)
report("Run /init", wait_for(b"Run /init", a.timeout))
t_prompt = wait_for(b"test-kernel# ", a.timeout)
report("shell prompt", t_prompt)
if t_prompt is not None:
    t0 = time.monotonic()
    proc.stdin.write(b"echo $((6*7))\n")
    ok = wait_for(b"\n42", 60)
    print(f"{'echo $((6*7)) answered':24s} {time.monotonic() - t0 if ok else float('nan'):7.2f} s", flush=True)
    # The processors: the count in /proc/cpuinfo, and which are online (short
    # lines: the UART takes 16 bytes at a time and the rest of a long one is lost).
    for name, command in (("processors", b"grep -c ^proc /proc/cpuinfo"),
                          ("online", b"cat /sys/devices/system/cpu/online")):
        mark = len(out)
        proc.stdin.write(command + b"\n")
        # The answer is the line after the echoed command (the shell may
        # echo it twice, redrawn after its cursor query: skip prompt lines).
        answer = re.compile(re.escape(command) + rb"\r?\n(?!test-kernel# )([^\r\n]+)\r?\n")
        deadline = time.monotonic() + 60
        while not answer.search(out, mark) and time.monotonic() < deadline:
            wait_for(b"\n", 1, since=len(out))
        found = answer.search(out, mark)
        print(f"{name:24s} {found.group(1).decode(errors='replace') if found else 'no answer'}", flush=True)
    proc.stdin.write(b"poweroff -f\n")
try:
    status = proc.wait(timeout=120)
except subprocess.TimeoutExpired:
    proc.kill()
    status = proc.wait()
report("exit", time.monotonic() - start)
print(f"swiftvmm exit status {status}")
