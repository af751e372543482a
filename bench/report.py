#!/usr/bin/env python3
"""Turns bench/run.sh's BENCH lines into a table (medians per device model, ratio ours/QEMU);
with --write, replaces the generated section of docs/benchmarks.md."""
import re, statistics, sys, subprocess, datetime

lines_in = open(sys.argv[1]).read().splitlines()
rows = [dict(kv.split("=", 1) for kv in line.split()[1:]) for line in lines_in if line.startswith("BENCH ")]
for line in lines_in:
    if line.startswith("BENCH-EXIT "):
        rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
# BENCH-BLK lines: one metric per line, keyed by device and kind.
for line in lines_in:
    if line.startswith("BENCH-BLK "):
        kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
        for key in ("seq_mb_s", "rand4k_iops"):
            if key in kv:
                rows.append({"dm": kv["dm"], f"{kv['dev']}:{key}": kv[key]})
metrics = [
    ("launch_to_marker_s", "launch to guest marker (s)", "lower"),
    ("vmhwm_kb", "device-model peak RSS, VmHWM (KiB)", "lower"),
    ("rss_beyond_ram_kb", "device-model RSS beyond guest RAM (KiB)", "lower"),
    ("pio_us", "port-I/O exit round trip, guest /dev/port read of 0x64 (us)", "lower"),
    ("/dev/sr0:seq_mb_s", "IDE CD-ROM sequential read, O_DIRECT 1 MiB (MB/s)", "higher"),
    ("/dev/sda:seq_mb_s", "IDE disk sequential read, O_DIRECT 1 MiB (MB/s)", "higher"),
    ("/dev/sda:rand4k_iops", "IDE disk random 4 KiB reads (reads/s)", "higher"),
    ("/dev/sr0:rand4k_iops", "IDE CD-ROM random 4 KiB reads (reads/s)", "higher"),
]
def med(dm, key):
    vals = [float(r[key]) for r in rows if r.get("dm") == dm and r.get(key) not in (None, "none")]
    return (statistics.median(vals), len(vals)) if vals else (None, 0)
lines = ["| metric | ours | QEMU | ours/QEMU | runs |", "|---|---|---|---|---|"]
exit_lines = ["| exit cost, TSC cycles per exit (firmware payload, 20000 reads) | ours | minimal VMM | QEMU | ours/minimal | ours/QEMU |",
              "|---|---|---|---|---|---|"]
for key, label in (("pio_cycles", "port read of 0x64"), ("mmio_cycles", "memory read of 0xa0000")):
    (o, _), (m, _), (q, _) = med("ours", key), med("minivmm", key), med("qemu", key)
    if q is not None and q < 1000:
        q = None  # not an exit: QEMU backs 0xa0000 without a VGA card in the kernel
    r = lambda a, b: f"{a / b:.2f}" if a and b else "n/a"
    f = lambda v: "n/a" if v is None else f"{v:.0f}"
    exit_lines.append(f"| {label} | {f(o)} | {f(m)} | {f(q)} | {r(o, m)} | {r(o, q)} |")
for key, label, _ in metrics:
    (o, n1), (q, n2) = med("ours", key), med("qemu", key)
    ratio = f"{o / q:.2f}" if o is not None and q else "n/a"
    fmt = lambda v: "n/a" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")
    lines.append(f"| {label} | {fmt(o)} | {fmt(q)} | {ratio} | {n1}/{n2} |")
table = "\n".join(lines) + "\n\n" + "\n".join(exit_lines)
print(table)
print("\nraw:")
print(open(sys.argv[1]).read())
if "--write" in sys.argv:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    day = datetime.date.today().isoformat()
    block = (f"<!-- bench:begin -->\nMeasured {day} at commit {rev} with `bench/run.sh --write` (medians; raw lines below).\n\n"
             f"{table}\n\n```\n{open(sys.argv[1]).read()}```\n<!-- bench:end -->")
    path = "docs/benchmarks.md"
    text = open(path).read()
    text = re.sub(r"<!-- bench:begin -->.*<!-- bench:end -->", lambda m: block, text, flags=re.S)
    open(path, "w").write(text)
    print(f"wrote {path}")
