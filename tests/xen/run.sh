#!/bin/bash
# Xen mode of the test harness: boots ONE Xen 4.17 L1 under QEMU TCG (PV dom0 = Debian's kernel + dom0.cpio) and runs
# the Xen scenarios in dom0 with the real xl, on Debian's qemu-xen and on our device model.
#
# Usage: tests/xen/run.sh [scenario...]        (default: all, in tests/xen/scenarios/list order)
# Env:   XEN_OUT (default target/xen)  XEN_DMLOG (our -d items, default guest_errors,unimp)  XEN_NO_BUILD=1
#        XEN_L1_MEM (3G)  XEN_SMP (2)  XEN_DM_BIN (use this devicemodel binary)
# Output: host-timestamped console in $XEN_OUT/console.log; per scenario $XEN_OUT/results/<name>.log and
#         <name>.status ("PASS", "FAIL rc=N", "TIMEOUT", "NOT-RUN"); a table in $XEN_OUT/results/summary.txt.
# Exit status: 0 when every selected scenario passed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
X=$ROOT/tests/xen
OUT=${XEN_OUT:-$ROOT/target/xen}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)   # absolute: host steps run in another directory
export XEN_OUT=$OUT
CACHE=${NESTED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devicemodel-tests}
log() { echo "xen-run: $*" >&2; }

mapfile -t ALL < <(grep -v '^#' "$X/scenarios/list" | cut -d' ' -f1)
if [ $# -gt 0 ]; then SEL=("$@"); else SEL=("${ALL[@]}"); fi
budget=60
for s in "${SEL[@]}"; do
  t=$(grep "^$s " "$X/scenarios/list" | cut -d' ' -f2 || true)
  [ -n "$t" ] || { log "unknown scenario $s (known: ${ALL[*]})"; exit 2; }
  budget=$((budget + t + 5))
done

SECONDS=0
if [ -z "${XEN_NO_BUILD:-}" ]; then
  "$ROOT/tests/scripts/setup.sh" >/dev/null
  "$X/setup.sh" >/dev/null
  "$X/build-dom0.sh"
fi
. "$CACHE/setup.env"
. "$CACHE/xen/setup-xen.env"
command -v qemu-system-x86_64 >/dev/null || { log "qemu-system-x86_64 not found"; exit 1; }
[ -f "$OUT/dom0.cpio" ] || { log "$OUT/dom0.cpio missing"; exit 1; }
log "host load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cpus (timings scale with contention)"
log "setup+build ${SECONDS}s; booting Xen with: ${SEL[*]} (host time limit ${budget}s)"

RES=$OUT/results
rm -rf "$RES" && mkdir -p "$RES"

# Host steps (tests/src/host_steps.rs): a scenario with scenarios/<name>.host-client.sh gets L1 user networking,
# dom0 reaches the step server at 10.0.2.2:<port>, and 127.0.0.1:$VNC_PORT on the host is dom0's port 5900.
NETARGS=() HSPID=
steps=()
for s in "${SEL[@]}"; do [ -f "$X/scenarios/$s.host-client.sh" ] && steps+=("$s=$X/scenarios/$s.host-client.sh"); done
if [ ${#steps[@]} -gt 0 ]; then
  VNC_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f "$OUT/host-steps.in"; mkfifo "$OUT/host-steps.in"
  "$OUT/host-steps" --art "$RES" --var VNC_HOST=127.0.0.1 --var VNC_PORT="$VNC_PORT" --var VNC_DISPLAY=$((VNC_PORT - 5900)) \
    --var PNGCMP="$OUT/pngcmp" --var VNCDO="$VNCDO" --var GVNCCAPTURE="$GVNCCAPTURE" "${steps[@]}" \
    < "$OUT/host-steps.in" > "$OUT/host-steps.out" 2>&1 &
  HSPID=$!
  exec 9> "$OUT/host-steps.in"
  for _ in $(seq 50); do grep -q 'port=' "$OUT/host-steps.out" && break; sleep 0.1; done
  HSPORT=$(sed -n 's/^HOST-STEPS port=//p' "$OUT/host-steps.out")
  [ -n "$HSPORT" ] || { log "host-steps did not start: $(cat "$OUT/host-steps.out")"; exit 1; }
  NETARGS=(-netdev "user,id=net0,hostfwd=tcp:127.0.0.1:$VNC_PORT-:5900" -device e1000,netdev=net0,romfile=)
  log "host steps on port $HSPORT, dom0 VNC :0 at 127.0.0.1:$VNC_PORT"
fi
XENARGS="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=1 loglvl=all guest_loglvl=all noreboot smap=0 smep=0"
# dom0 args: no commas (the -initrd list is comma separated); k=v words reach dom0's /init as environment
DOM0ARGS="console=hvc0 earlyprintk=xen panic=-1 quiet xenscen=$(IFS=:; echo "${SEL[*]}") dmlog=$(echo "${XEN_DMLOG:-guest_errors,unimp}" | tr , +)${HSPORT:+ hoststeps=10.0.2.2:$HSPORT}"
set +e
timeout --foreground -k 5 "$budget" qemu-system-x86_64 -accel tcg -cpu max -smp "${XEN_SMP:-2}" -m "${XEN_L1_MEM:-3G}" \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot "${NETARGS[@]}" \
  -kernel "$XEN_ELF" -append "$XENARGS" -initrd "$VMLINUZ $DOM0ARGS,$OUT/dom0.cpio" < /dev/null 2>&1 \
  | python3 -u -c '
import sys, time
t0 = time.monotonic()
for line in sys.stdin.buffer:
    sys.stdout.write("[%7.2f] %s" % (time.monotonic() - t0, line.decode("utf-8", "replace").rstrip("\r\n") + "\n"))
    sys.stdout.flush()
' > "$OUT/console.log"
rc=${PIPESTATUS[0]}
set -e
if [ -n "$HSPID" ]; then exec 9>&-; kill "$HSPID" 2>/dev/null || true; wait "$HSPID" 2>/dev/null || true; fi
log "L1 exited rc=$rc after $((SECONDS))s total; host load average now $(cut -d' ' -f1-3 /proc/loadavg)"

# split the console at the @@BEGIN/@@END markers
python3 - "$OUT/console.log" "$RES" "${SEL[@]}" <<'PY'
import re, sys
console, res, names = sys.argv[1], sys.argv[2], sys.argv[3:]
cur, buf, status, secs = None, [], {}, {}
for line in open(console, encoding="utf-8", errors="replace"):
    body = re.sub(r"^\[\s*[0-9.]+\] ", "", line)
    m = re.match(r"@@BEGIN (\S+)", body)
    if m:
        cur, buf = m.group(1), [line]
        continue
    if cur:
        buf.append(line)
        if body.startswith("@@TIMEOUT "):
            status[cur] = "TIMEOUT"
        m = re.match(r"@@END (\S+) rc=(\d+) secs=(\S+)", body)
        if m:
            rc = int(m.group(2))
            status[cur] = status.get(cur) or ("PASS" if rc == 0 else "FAIL rc=%d" % rc)
            secs[cur] = m.group(3)
            open("%s/%s.log" % (res, cur), "w").write("".join(buf))
            cur = None
if cur:  # L1 died inside a scenario
    status[cur] = "INCOMPLETE"
    open("%s/%s.log" % (res, cur), "w").write("".join(buf))
rows = []
for n in names:
    st = status.get(n, "NOT-RUN")
    open("%s/%s.status" % (res, n), "w").write(st + "\n")
    rows.append("%-24s %-12s %s" % (n, st, secs.get(n, "-") + "s" if n in secs else "-"))
bench = [re.sub(r"^\[\s*[0-9.]+\] ", "", l).strip() for l in open(console, errors="replace") if "XEN-BENCH dm=" in l and "echo" not in l]
text = "\n".join(["%-24s %-12s %s" % ("scenario", "status", "dom0 secs")] + rows + bench) + "\n"
open("%s/summary.txt" % res, "w").write(text)
print(text, end="")
PY
for t in "DOM0-READY" "DOM0-DONE"; do grep -m1 "@@$t" "$OUT/console.log" >&2 || log "no @@$t in the console (see $OUT/console.log)"; done
! grep -q -v PASS "$RES"/*.status
