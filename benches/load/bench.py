#!/usr/bin/env python3
"""Helpers for benches/load/run: sampling /proc, parsing tool output, checking Kafka counts and
writing RESULTS.md. Standard library only.

  bench.py sample OUT PID [PID...]      append "t ticks rss_kb hwm_kb" per pid every 0.2 s until killed
  bench.py wrk ...                      turn one wrk run into a result record (see cmd_wrk)
  bench.py oha ...                      the same for an oha JSON output
  bench.py perf ...                     the same for ProducerPerformance output
  bench.py strace ...                   the same for `strace -c -f` output
  bench.py rss ...                      an RSS-under-load record
  bench.py get RESULTS NAME FIELD       print one field of a stored record
  bench.py report RESULTS META          print RESULTS.md
"""
import argparse
import json
import os
import re
import signal
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------
# /proc sampling

def proc_sample(pid):
    """(cpu ticks utime+stime, VmRSS kB, VmHWM kB) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    hwm = re.search(r"^VmHWM:\s+(\d+)", status, re.M)
    if not rss or not hwm:  # a zombie
        return None
    return ticks, int(rss.group(1)), int(hwm.group(1))


def system_ticks():
    """(busy, total, irq) CPU ticks of the whole machine, all CPUs, from /proc/stat. busy is
    user+nice+system+steal; irq is irq+softirq, kept apart: on loopback the network stack's
    softirq work for the test traffic itself is charged to no process."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    busy = user + nice + system + steal
    return busy, busy + idle + iowait + irq + softirq, irq + softirq


def comm_ticks(name):
    """CPU ticks of every process whose comm is `name` (the load generator) plus this one."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm == name or int(d) == os.getpid():
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])
    return total


# sample file columns: t, machine busy ticks, machine total ticks, machine irq+softirq ticks,
# load-generator ticks (wrk/oha processes and the sampler itself), then "ticks rss_kb hwm_kb"
# for every pid given
HEAD = 5


def cmd_sample(a):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(a.out, "a", buffering=1) as out:
        while not stop:
            busy, total, irq = system_ticks()
            cols = [f"{time.time():.3f}", str(busy), str(total), str(irq), str(comm_ticks(a.loadgen))]
            alive = False
            for pid in a.pids:
                s = proc_sample(pid)
                alive = alive or s is not None
                cols += [str(x) for x in (s or (-1, -1, -1))]
            out.write(" ".join(cols) + "\n")
            if not alive:
                break
            time.sleep(a.interval)


def load_samples(path, col):
    """[(t, ticks, rss, hwm)] for the col-th pid of a sample file (col -1: the machine's busy
    ticks, col -2: the load generator's ticks, col -3: the machine's irq+softirq ticks; rss and
    hwm are 0 for those)."""
    rows = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < HEAD + 3 * (col + 1):
                continue
            t = float(p[0])
            if col == -1:
                rows.append((t, int(p[1]), 0, 0))
                continue
            if col == -2:
                rows.append((t, int(p[4]), 0, 0))
                continue
            if col == -3:
                rows.append((t, int(p[3]), 0, 0))
                continue
            ticks, rss, hwm = (int(x) for x in p[HEAD + 3 * col: HEAD + 3 + 3 * col])
            if ticks >= 0:
                rows.append((t, ticks, rss, hwm))
    return rows


def ticks_at(rows, t):
    """CPU ticks at time t, linearly interpolated between samples."""
    if not rows:
        return None
    if t <= rows[0][0]:
        return rows[0][1]
    for (t0, c0, *_), (t1, c1, *_) in zip(rows, rows[1:]):
        if t0 <= t <= t1:
            return c0 + (c1 - c0) * ((t - t0) / (t1 - t0) if t1 > t0 else 0)
    return rows[-1][1]


def window_stats(samples, col, t0, t1):
    rows = load_samples(samples, col)
    c0, c1 = ticks_at(rows, t0), ticks_at(rows, t1)
    inside = [r for r in rows if t0 <= r[0] <= t1]
    return {
        "cpu_s": None if c0 is None else (c1 - c0) / CLK_TCK,
        "rss_max_kb": max((r[2] for r in inside), default=None),
        "hwm_kb": rows[-1][3] if rows else None,
    }


def foreign_cores(samples, npids, t0, t1):
    """CPU used by processes other than the measured ones (the pids, the load generator and the
    sampler), in cores, over [t0, t1]: other engineers' builds and tests on a shared machine."""
    secs = t1 - t0
    if secs <= 0:
        return None
    machine = window_stats(samples, -1, t0, t1)["cpu_s"]
    ours = window_stats(samples, -2, t0, t1)["cpu_s"] or 0
    for col in range(npids):
        ours += window_stats(samples, col, t0, t1)["cpu_s"] or 0
    return None if machine is None else max(0.0, (machine - ours) / secs)


def cmd_quiet(a):
    """Wait until the machine is nearly idle (busy < threshold cores over 1 s, not counting the
    harness's own idle servers given with --exclude), at most max_wait s."""
    start, said = time.time(), False
    def ours():
        return sum((proc_sample(p) or (0,))[0] for p in a.exclude)

    def not_niced():  # user + system + steal: niced background work yields to the test anyway
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[0] + v[2] + v[7]
    while True:
        b0, o0 = not_niced(), ours()
        time.sleep(1)
        b1, o1 = not_niced(), ours()
        cores = max(0, (b1 - b0) - (o1 - o0)) / CLK_TCK
        if cores < a.threshold:
            return 0
        if time.time() - start > a.max_wait:
            print(f"  machine still busy ({cores:.2f} cores used by others) after {a.max_wait:.0f} s; "
                  "measuring anyway", file=sys.stderr)
            return 0
        if not said:
            print(f"  waiting for the machine to calm down ({cores:.2f} cores busy)", file=sys.stderr)
            said = True


# --------------------------------------------------------------------------------------------
# records

def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def load(path):
    recs = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    recs[r["name"]] = r
    return recs


def wrk_json(path):
    with open(path) as f:
        for line in f:
            if line.startswith("BENCH_JSON "):
                return json.loads(line[len("BENCH_JSON "):])
    raise SystemExit(f"bench.py: no BENCH_JSON line in {path} (did wrk fail?)")


def kafka_check(rec, ok_count, unanswered, before, after):
    """Compare records added to Kafka with the 2xx produce answers. Exact when no produce
    request was left unanswered at the cutoff; otherwise the unanswered ones may or may not
    have been written, so only ok <= added <= ok + unanswered can be asserted."""
    if before is None or after is None:
        rec["kafka_check"] = "skipped"
        return True
    added = after - before
    rec["kafka_added"] = added
    rec["kafka_unanswered_at_cutoff"] = unanswered
    if unanswered == 0:
        ok = added == ok_count
        rec["kafka_check"] = "exact: ok" if ok else f"exact: FAIL (Kafka +{added}, 2xx {ok_count})"
    else:
        ok = ok_count <= added <= ok_count + unanswered
        rec["kafka_check"] = (f"bound: {'ok' if ok else 'FAIL'} (Kafka +{added}, 2xx {ok_count}, "
                              f"{unanswered} produce requests unanswered at cutoff)")
    return ok


def cmd_wrk(a):
    w = wrk_json(a.wrk_out)
    rec = {"name": a.name, "tool": "wrk", "target": a.target, "mode": a.mode, "size": a.size,
           "conns": a.conns, "duration": a.duration, "cmd": a.cmd_line}
    secs = w["main_secs"] if w["main_secs"] > 0 else w["duration_us"] / 1e6
    if a.mode == "healthz":
        good = w["main_2xx"]
        secs = w["duration_us"] / 1e6
    else:
        good = w["main_2xx"]
    rec.update({k: w[k] for k in w})
    rec["ok"] = good
    rec["rps"] = good / secs
    rec["payload_mib_s"] = good * a.size / MIB / secs if a.mode != "healthz" else None
    rec["non2xx"] = w["main_4xx"] + w["main_5xx"] + w["main_other"]
    rec["socket_errors"] = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
    for p in ("50", "90", "99", "99_9"):
        rec[f"p{p}_ms"] = w[f"lat_p{p}_us"] / 1000
    if a.samples:
        st = window_stats(a.samples, 0, a.t_start, a.t_start + secs)
        rec["cpu_s"] = st["cpu_s"]
        rec["rss_max_kb"] = st["rss_max_kb"]
        rec["hwm_kb"] = st["hwm_kb"]
        # responses completed inside the CPU window: produce answers (drain answers come later)
        rec["cpu_us_per_req"] = (st["cpu_s"] * 1e6 / good) if good and st["cpu_s"] is not None else None
        if a.broker_col is not None:
            bst = window_stats(a.samples, a.broker_col, a.t_start, a.t_start + secs)
            rec["broker_cpu_s"] = bst["cpu_s"]
        lg = window_stats(a.samples, -2, a.t_start, a.t_start + secs)
        rec["loadgen_cpu_s"] = lg["cpu_s"]
        rec["machine_cpu_s"] = window_stats(a.samples, -1, a.t_start, a.t_start + secs)["cpu_s"]
        rec["foreign_cores"] = foreign_cores(a.samples, 2 if a.broker_col is not None else 1,
                                             a.t_start, a.t_start + secs)
        irq = window_stats(a.samples, -3, a.t_start, a.t_start + secs)["cpu_s"]
        rec["softirq_cores"] = irq / secs if irq is not None else None
    passed = True
    if a.mode != "healthz":
        passed = kafka_check(rec, good, w["sent_main"] - w["resp_main"], a.kafka_before, a.kafka_after)
    append(a.results, rec)
    print(f"  {a.name}: {rec['rps']:.0f} req/s ({good} 2xx, {rec['non2xx']} non-2xx, "
          f"{rec['socket_errors']} socket errors), p50 {rec['p50_ms']:.2f} ms, p99 {rec['p99_ms']:.2f} ms"
          + (f", CPU {rec['cpu_us_per_req']:.1f} us/req" if rec.get("cpu_us_per_req") else "")
          + (f", Kafka check {rec['kafka_check']}" if "kafka_check" in rec else "")
          + (f", other load {rec['foreign_cores']:.2f} cores" if rec.get("foreign_cores") is not None else ""))
    return 0 if passed else 3


def hist_delta(before, after):
    """Cumulative (bound in s, count) pairs of a Prometheus histogram over a run, from two
    "le=count,..." snapshots; None when either is missing or nothing was counted."""
    if not before or not after:
        return None
    parse = lambda t: {k: int(v) for k, v in (kv.split("=") for kv in t.split(",") if "=" in kv)}
    b, e = parse(before), parse(after)
    counts = sorted(((float("inf") if k == "+Inf" else float(k)), e[k] - b.get(k, 0)) for k in e)
    return counts if counts and counts[-1][1] > 0 else None


def hist_bound(counts, q):
    """The bucket bound (ms) that the q quantile falls under."""
    total = counts[-1][1]
    return next((le for le, c in counts if c >= q * total), float("inf")) * 1000


def server_latency(before, after):
    """The proxy's own view of a run, from its request-duration histogram (first byte of a
    request to its response): the bucket bound its p50 and p99 fall under, and the share of
    requests answered within 5 ms. Coarse (bucket bounds) but free of the load generator's
    own queueing."""
    counts = hist_delta(before, after)
    if counts is None:
        return None
    total = counts[-1][1]
    within5 = next((c for le, c in counts if abs(le - 0.005) < 1e-9), None)
    return {"server_requests": total, "server_p50_le_ms": hist_bound(counts, 0.5),
            "server_p99_le_ms": hist_bound(counts, 0.99),
            "server_within_5ms": (within5 / total) if within5 is not None else None}


def broker_round_trip(before, after):
    """The ProduceRequest round trips of a run, from the proxy's histogram (request queued on
    the broker connection to its answer read): p50 and p99 bucket bounds."""
    counts = hist_delta(before, after)
    if counts is None:
        return None
    return {"rtt_requests": counts[-1][1], "rtt_p50_le_ms": hist_bound(counts, 0.5),
            "rtt_p99_le_ms": hist_bound(counts, 0.99)}


def read_fixed(client, path):
    """One fixed-rate run's client output as {ok, non2xx, errors, unanswered, rps, p50_ms..max_ms,
    seconds, extra}: oha's JSON, or pacer's one-line JSON."""
    with open(path) as f:
        o = json.load(f)
    if client == "pacer":
        keys = ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms")
        return dict({k: o[k] for k in keys}, ok=o["ok"], non2xx=o["non2xx"], errors=o["errors"],
                    unanswered=o["unanswered"], rps=o["rps"], seconds=o["duration_s"],
                    extra={"pacer_lag_p99_ms": o["pacer_lag_p99_ms"],
                           "pacer_lag_max_ms": o["pacer_lag_max_ms"], "sent": o["sent"]})
    s = o["summary"]
    dist = o.get("statusCodeDistribution", {})
    pct = o.get("latencyPercentiles", {})
    return {"ok": sum(v for k, v in dist.items() if k.startswith("2")),
            "non2xx": sum(v for k, v in dist.items() if not k.startswith("2")),
            "errors": sum(o.get("errorDistribution", {}).values()), "unanswered": 0,
            "rps": s.get("requestsPerSec"), "seconds": s["total"],
            "p50_ms": pct["p50"] * 1000, "p90_ms": pct["p90"] * 1000, "p99_ms": pct["p99"] * 1000,
            "p99_9_ms": pct["p99.9"] * 1000, "max_ms": s["slowest"] * 1000,
            "extra": {"error_distribution": o.get("errorDistribution", {})}}


def runtime_lag(before, after):
    """The proxy's runtime-lag probes over a run (one every 10 ms): how many, and the share
    that fired more than 5 ms late (requests waited unread at least that long then)."""
    counts = hist_delta(before, after)
    if counts is None:
        return None
    total = counts[-1][1]
    within5 = next((c for le, c in counts if abs(le - 0.005) < 1e-9), None)
    return {"lag_probes": total,
            "lag_over_5ms": (total - within5) / total if within5 is not None else None}


def cmd_fixed(a):
    r = read_fixed(a.client, a.json_out)
    ok = r["ok"]
    rec = {"name": a.name, "tool": a.client, "target": a.target, "mode": a.mode, "size": a.size,
           "conns": a.conns, "rate": a.rate, "duration": a.duration, "cmd": a.cmd_line,
           "ok": ok, "non2xx": r["non2xx"], "errors": r["errors"], "rps": r["rps"],
           **{k: r[k] for k in ("p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms")}, **r["extra"]}
    if a.samples:
        t1 = a.t_start + r["seconds"]
        st = window_stats(a.samples, 0, a.t_start, t1)
        rec["cpu_us_per_req"] = st["cpu_s"] * 1e6 / ok if ok and st["cpu_s"] is not None else None
        rec["rss_max_kb"] = st["rss_max_kb"]
        rec["foreign_cores"] = foreign_cores(a.samples, 2, a.t_start, t1)
    server = server_latency(a.server_hist_before, a.server_hist_after)
    if server:
        rec.update(server)
    rtt = broker_round_trip(a.rtt_hist_before, a.rtt_hist_after)
    if rtt:
        rec.update(rtt)
    lag = runtime_lag(a.lag_hist_before, a.lag_hist_after)
    if lag:
        rec.update(lag)
    passed = kafka_check(rec, ok, r["unanswered"], a.kafka_before, a.kafka_after)
    append(a.results, rec)
    print(f"  {a.name} ({a.client}): {rec['rps']:.0f} req/s at target {a.rate or 'closed loop'}/s ({ok} 2xx, "
          f"{r['non2xx']} non-2xx, {r['errors']} errors), p50 {rec['p50_ms']:.2f} ms, p99 {rec['p99_ms']:.2f} ms, "
          f"p99.9 {rec['p99_9_ms']:.2f} ms, Kafka check {rec['kafka_check']}"
          + (f", other load {rec['foreign_cores']:.2f} cores" if rec.get("foreign_cores") is not None else ""))
    return 0 if passed else 3


def cmd_perf(a):
    text = open(a.out).read()
    m = None
    for m in re.finditer(r"(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), "
                         r"([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, "
                         r"(\d+) ms 95th, (\d+) ms 99th", text):
        pass
    if not m:
        raise SystemExit(f"bench.py: no ProducerPerformance summary in {a.out}")
    rec = {"name": a.name, "tool": "ProducerPerformance", "target": "kafka", "size": a.size,
           "variant": a.variant,
           "cmd": a.cmd_line, "records": int(m.group(1)), "rps": float(m.group(2)),
           "payload_mib_s": float(m.group(3)), "avg_ms": float(m.group(4)),
           "p50_ms": float(m.group(6)), "p99_ms": float(m.group(8))}
    append(a.results, rec)
    print(f"  {a.name}: {rec['rps']:.0f} records/s, {rec['payload_mib_s']:.2f} MiB/s")
    return 0


def parse_strace(path):
    calls, per = None, {}
    for line in open(path):
        p = line.split()
        if not p or p[0].startswith("-") or p[0] == "%":
            continue
        if p[-1] == "total":
            calls = int(p[3])
        elif len(p) >= 5 and re.match(r"^[\d.]+$", p[0]):
            per[p[-1]] = int(p[3])
    return calls, per


def cmd_strace(a):
    calls, per = parse_strace(a.strace_out)
    w = wrk_json(a.wrk_out)
    # requests answered while strace was attached: the delta of the proxy's own
    # kafka_webhook_requests_total for the route, read right after attaching and right before
    # detaching (connection set-up and tear-down are outside the window)
    reqs = a.window_requests
    basis = "requests_total delta in the traced window"
    top = sorted(per.items(), key=lambda kv: -kv[1])[:8]
    rec = {"name": a.name, "tool": "strace", "target": a.target, "mode": a.mode, "size": a.size,
           "conns": a.conns, "duration": a.duration, "cmd": a.cmd_line, "syscalls": calls,
           "requests": reqs, "basis": basis, "rps_traced": reqs / a.duration if a.duration else None,
           "wrk_2xx": w["main_2xx"], "kafka_added": (a.kafka_after - a.kafka_before)
           if a.kafka_after is not None and a.kafka_before is not None else None,
           "syscalls_per_req": calls / reqs if calls and reqs else None,
           "top": {k: round(v / reqs, 3) for k, v in top} if reqs else {}}
    append(a.results, rec)
    print(f"  {a.name}: {calls} syscalls / {reqs} requests = "
          f"{rec['syscalls_per_req'] if rec['syscalls_per_req'] is None else round(rec['syscalls_per_req'], 3)}"
          f" per request; top per request: {rec['top']}")
    return 0


def cmd_pick(a):
    """Of several attempts at one measurement, keep the one least disturbed by other load."""
    recs = []
    for path in a.tries:
        recs.extend(load(path).values())
    if not recs:
        return 1
    best = min(recs, key=lambda r: r.get("foreign_cores") or 0)
    best["attempts"] = len(recs)
    best["attempts_foreign_cores"] = [round(r.get("foreign_cores") or 0, 2) for r in recs]
    best["attempts_rps"] = [round(r.get("rps") or 0) for r in recs]
    append(a.results, best)
    print(f"{best.get('foreign_cores') or 0:.3f}")
    return 0


def cmd_get(a):
    r = load(a.results).get(a.rec_name) if os.path.isfile(a.results) else None
    v = r.get(a.field) if r else None
    print("" if v is None else v)
    return 0


# --------------------------------------------------------------------------------------------
# report

def pct(v, d=2):
    return "n/a" if v is None else f"{v * 100:.{d}f} %"


def fmt(v, d=0, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        s = f"{v:,.{d}f}"
    else:
        s = f"{v:,}"
    return s + unit


def ratio(a, b, d=2):
    if a is None or b is None or b == 0:
        return None
    return a / b


def attempts(r):
    if r.get("attempts", 1) <= 1:
        return ""
    return " (attempts: " + ", ".join(
        f"{fc}/{rps:,}" for fc, rps in zip(r["attempts_foreign_cores"], r["attempts_rps"])) + ")"


def cmd_report(a):
    R = load(a.results)
    M = json.load(open(a.meta))
    out = []
    w = out.append
    g = lambda n, f: (R.get(n) or {}).get(f)

    w("# kafka-webhook load test results\n")
    w(f"Produced by `benches/load/run` (see `docs/benchmarks.md`). Raw records: "
      f"`{M['results_rel']}` (one JSON object per measurement).\n")
    w("| | |\n|---|---|")
    for k in ("date", "commit", "machine", "cpu_model", "memory", "kernel", "load", "nice", "mode_note", "wrk", "oha",
              "proxy", "kafka", "strimzi", "java"):
        if M.get(k):
            w(f"| {k.replace('_', ' ')} | {M[k]} |")
    w("")
    if M.get("problems"):
        w("## Problems in this run\n")
        for p in M["problems"]:
            w(f"- {p}")
        w("")

    # --------------------------------------------------------------------- throughput table
    w("## Throughput (wrk, closed loop, keep-alive)\n")
    w("req/s = 2xx produce responses per second of the produce phase (the last "
      f"{M.get('drain', '?')} s of each run is a drain phase, see docs/benchmarks.md); "
      "CPU = proxy utime+stime in the produce phase / 2xx responses. Every webhook and Strimzi "
      "row is checked against the records added to Kafka.\n")
    w("| target | body | conns | req/s | payload MiB/s | p50 ms | p99 ms | non-2xx | sock err | "
      "CPU us/req | RSS max MiB | softirq (cores) | other load (cores) | Kafka check |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    names = [n for n, r in R.items() if r.get("tool") == "wrk" and not n.startswith("rss")]
    for n in names:
        r = R[n]
        body = "-" if r["mode"] == "healthz" else f"{r['size']} B"
        target = {"webhook": "kafka-webhook POST /webhook", "healthz": "kafka-webhook GET /healthz (no-op)",
                  "strimzi": "Strimzi bridge POST /topics, as shipped"}[r["mode"]]
        if n.startswith("strimzi-fjp2-"):
            target = "Strimzi bridge POST /topics, common pool parallelism 2"
        cpu_who = r.get("cpu_us_per_req")
        w(f"| {target} | {body} | {r['conns']} | {fmt(r['rps'])} | {fmt(r.get('payload_mib_s'), 2)} | "
          f"{fmt(r['p50_ms'], 2)} | {fmt(r['p99_ms'], 2)} | {r['non2xx']} | {r['socket_errors']} | "
          f"{fmt(cpu_who, 1)} | {fmt((r.get('rss_max_kb') or 0) / 1024 if r.get('rss_max_kb') else None, 1)} | "
          f"{fmt(r.get('softirq_cores'), 2)} | {fmt(r.get('foreign_cores'), 2)}{attempts(r)} | {r.get('kafka_check', '-')} |")
    w("")
    w("CPU us/req and RSS are those of the server under test: the proxy, or for Strimzi rows the "
      "bridge JVM. *Other load* is CPU used during the run by processes other than the server, "
      "the broker, wrk and the sampler (the machine is shared); a run with more than "
      f"{M.get('foreign_max', '?')} cores of it is repeated up to {M.get('retries', '?')} times "
      "and the least disturbed attempt is kept (the attempts are listed as other-load/req-s). "
      "*softirq* is the machine's irq+softirq time: mostly the loopback TCP stack carrying the "
      "test traffic, charged to no process, so it is in neither CPU us/req nor other load.\n")

    perf = [r for r in R.values() if r.get("tool") == "ProducerPerformance"]
    if perf:
        w("## Broker ceiling: Kafka's ProducerPerformance (Java producer, acks=all)\n")
        w("`default` = the Java client's defaults (batch.size 16 KiB, linger.ms 5); `batch1m` = "
          "batch.size 1 MiB, like kafka-webhook's --batch-max-bytes. The better one is the ceiling.\n")
        w("| record size | producer props | records | records/s | MiB/s | avg ms | p50 ms | p99 ms |")
        w("|---|---|---|---|---|---|---|---|")
        for r in perf:
            w(f"| {r['size']} B | {r.get('variant', 'default')} | {fmt(r['records'])} | {fmt(r['rps'])} | {fmt(r['payload_mib_s'], 2)} | "
              f"{fmt(r['avg_ms'], 1)} | {fmt(r['p50_ms'], 0)} | {fmt(r['p99_ms'], 0)} |")
        w("")

    fixed = [r for r in R.values() if r.get("tool") in ("oha", "pacer")]
    if fixed:
        w("## Fixed rate (latency free of coordinated omission)\n")
        w("Two clients: `pacer` (benches/load/pacer: one thread, wrk2's per-connection schedule; "
          "latency from the scheduled time when the server still held the connection's previous "
          "request, otherwise from the send) and oha (`-q RATE --latency-correction`: latency from "
          "the moment its rate timer released the request). Each also runs against the no-op "
          "`GET /healthz` at the same rate: that row is the floor the client, the kernel and the "
          "shared CPUs put under the webhook's numbers.\n")
        w("*proxy p50/p99 <=* and *proxy <= 5 ms* come from the proxy's own request-duration "
          "histogram over the run (first byte of a request to its response; bucket bounds), "
          "next to what oha measured from each request's scheduled send time, which also holds "
          "the time oha itself fell behind its schedule. *Kafka round trip p50/p99 <=* come from "
          "the proxy's ProduceRequest histogram (request queued on the broker connection to its "
          "answer read). *proxy runtime late > 5 ms*: the share of the proxy's runtime-lag "
          "probes (a timer every 10 ms) that fired more than 5 ms late; requests waited unread "
          "at least that long then.\n")
        w("| target | client | body | conns | target rate | achieved req/s | 2xx | non-2xx | errors | "
          "p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | proxy p50 <= ms | proxy p99 <= ms | proxy <= 5 ms | "
          "Kafka round trip p50 / p99 <= ms | proxy runtime late > 5 ms | CPU us/req | other load (cores) | Kafka check |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in fixed:
            rate = f"{fmt(r['rate'])}/s" if r.get("rate") else "closed loop"
            body = "- (GET /healthz)" if r["mode"] == "healthz" else f"{r['size']} B"
            w(f"| {r['name']} | {r['tool']} | {body} | {r['conns']} | {rate} | {fmt(r['rps'])} | "
              f"{r['ok']} | {r['non2xx']} | {r['errors']} | {fmt(r['p50_ms'], 2)} | {fmt(r['p90_ms'], 2)} | "
              f"{fmt(r['p99_ms'], 2)} | {fmt(r['p99_9_ms'], 2)} | {fmt(r['max_ms'], 1)} | "
              f"{fmt(r.get('server_p50_le_ms'), 1)} | {fmt(r.get('server_p99_le_ms'), 1)} | "
              f"{pct(r.get('server_within_5ms'))} | "
              f"{fmt(r.get('rtt_p50_le_ms'), 2)} / {fmt(r.get('rtt_p99_le_ms'), 2)} | "
              f"{pct(r.get('lag_over_5ms'))} of {fmt(r.get('lag_probes'))} probes | "
              f"{fmt(r.get('cpu_us_per_req'), 1)} | {fmt(r.get('foreign_cores'), 2)}{attempts(r)} | {r['kafka_check']} |")
        w("")

    st = [r for r in R.values() if r.get("tool") == "strace"]
    if st:
        w("## Syscalls per request (`strace -c -f -p PID` around a wrk run)\n")
        w("strace attaches while the proxy is idle, a wrk run happens inside, and it detaches once "
          "the proxy is idle again: the requests (the exact change of the proxy's request counter) "
          "and the syscalls cover the same work, connection set-up and tear-down included.\n")
        w("strace stops the process at every syscall, so the traced request rate is far below "
          "the untraced one; the count per request is what is measured here.\n")
        w("| target | conns | syscalls | requests (basis) | syscalls/req | top syscalls per request |")
        w("|---|---|---|---|---|---|")
        for r in st:
            top = ", ".join(f"{k} {v:.3f}" for k, v in r["top"].items() if v >= 0.0005)
            w(f"| {r['mode']} {'' if r['mode'] == 'healthz' else str(r['size']) + ' B'} | {r['conns']} | "
              f"{fmt(r['syscalls'])} | {fmt(r['requests'])} ({r['basis']}) | "
              f"{fmt(r['syscalls_per_req'], 3)} | {top} |")
        w("")

    rss = R.get("rss-1000")
    if rss:
        w("## Memory with 1,000 keep-alive connections under load\n")
        w(f"wrk -c 1000 against POST /webhook ({rss['size']} B) for {rss['duration']} s: "
          f"{fmt(rss['rps'])} req/s, {rss['non2xx']} non-2xx, {rss['socket_errors']} socket errors. "
          f"Proxy VmRSS max while under load **{fmt(rss['rss_max_kb'] / 1024 if rss.get('rss_max_kb') else None, 1)} MiB**; "
          f"VmHWM (peak since the counter was reset before the run) "
          f"{fmt(rss['hwm_kb'] / 1024 if rss.get('hwm_kb') else None, 1)} MiB. "
          f"Kafka check: {rss.get('kafka_check')}.\n")

    # --------------------------------------------------------------------- ratios & targets
    wh100 = R.get("webhook-100-256")
    noop = R.get("healthz-256")
    s100, s1k = R.get("strimzi-100-256"), R.get("strimzi-1024-256")
    wh1k = R.get("webhook-1024-256")
    wh16 = max((R.get(n) for n in ("webhook-16384-64", "webhook-16384-256") if R.get(n)),
               key=lambda r: r["payload_mib_s"] or 0, default=None)
    pp16 = max((r for r in R.values() if r.get("tool") == "ProducerPerformance" and r["size"] == 16384),
               key=lambda r: r["payload_mib_s"], default=None)
    sc = R.get("strace-webhook-100-256")
    rows = []

    def target(label, value, shown, goal, ok_fn, miss_fn, note=""):
        if value is None:
            rows.append(f"| {label} | n/a | {goal} | **not measured** {note} |")
        elif ok_fn(value):
            rows.append(f"| {label} | {shown} | {goal} | **met** {note} |")
        else:
            rows.append(f"| {label} | {shown} | {goal} | **not met**: {miss_fn(value)} {note} |")

    v = ratio(g("webhook-100-256", "rps"), g("healthz-256", "rps"))
    target("webhook req/s vs no-op (100 B, 256 conns)", v,
           f"{fmt(v * 100 if v else None, 1)} % ({fmt(g('webhook-100-256', 'rps'))} / {fmt(g('healthz-256', 'rps'))})",
           ">= 60 %", lambda x: x >= 0.60, lambda x: f"{(0.60 - x) * 100:.1f} points short")
    v = ratio(g("webhook-100-256", "cpu_us_per_req"), g("healthz-256", "cpu_us_per_req"))
    target("CPU per request, webhook vs no-op (100 B, 256 conns)", v,
           f"{fmt(v, 2)}x ({fmt(g('webhook-100-256', 'cpu_us_per_req'), 1)} / {fmt(g('healthz-256', 'cpu_us_per_req'), 1)} us)",
           "<= 1.6x", lambda x: x <= 1.6, lambda x: f"{x / 1.6:.2f}x the allowance ({x - 1.6:+.2f})")
    def best(*prefixes):
        rs = [r for n, r in R.items() if n.startswith(prefixes) and r.get("rps")]
        return max(rs, key=lambda r: r["rps"]) if rs else None

    for size, goal in ((100, 10), (1024, 5)):
        wb, sb = best(f"webhook-{size}-"), best(f"strimzi-{size}-", f"strimzi-fjp2-{size}-")
        v = ratio(wb and wb["rps"], sb and sb["rps"])
        v256 = ratio(g(f"webhook-{size}-256", "rps"), g(f"strimzi-{size}-256", "rps"))
        sbv = sb and ("common pool parallelism 2" if sb["name"].startswith("strimzi-fjp2") else "as shipped")
        shown = (f"{fmt(v, 1)}x best vs best ({fmt(wb and wb['rps'])} at {wb and wb['conns']} conns / "
                 f"{fmt(sb and sb['rps'])} at {sb and sb['conns']} conns, {sbv}); "
                 f"{fmt(v256, 1)}x at 256 conns vs the bridge as shipped")
        target(f"webhook vs Strimzi bridge req/s, {'100 B' if size == 100 else '1 KiB'}", v, shown,
               f">= {goal}x", lambda x, goal=goal: x >= goal, lambda x, goal=goal: f"{goal - x:.1f}x short")
    v = ratio(wh16["payload_mib_s"] if wh16 else None, pp16["payload_mib_s"] if pp16 else None)
    target("16 KiB payload MiB/s (best of 64/256 conns) vs ProducerPerformance"
           + (f" ({pp16['variant']})" if pp16 else ""), v,
           f"{fmt(v * 100 if v else None, 1)} % ({fmt(wh16['payload_mib_s'] if wh16 else None, 1)} / "
           f"{fmt(pp16['payload_mib_s'] if pp16 else None, 1)} MiB/s)",
           ">= 70 %", lambda x: x >= 0.70, lambda x: f"{(0.70 - x) * 100:.1f} points short")
    for client, fx, fh in (("pacer", R.get("fixed-100-pacer"), R.get("fixed-healthz-pacer")),
                           ("oha", R.get("fixed-100"), R.get("fixed-healthz"))):
        if fx is None:
            rows.append(f"| p50 / p99 at half peak ({client}) | n/a | p50 <= 1.5 ms, p99 <= 5 ms | **not measured** |")
            continue
        note = ""
        if fx["rps"] < 0.97 * fx["rate"]:
            note = f"(rate not sustained: {fmt(fx['rps'])}/s achieved, the machine was saturated)"
        target(f"p50 at half peak ({client}, {fmt(fx['rate'])}/s, {fx['conns']} conns, 100 B)", fx["p50_ms"],
               f"{fmt(fx['p50_ms'], 2)} ms {note}", "<= 1.5 ms", lambda x: x <= 1.5, lambda x: f"{x - 1.5:.2f} ms over")
        target(f"p99 at half peak ({client})", fx["p99_ms"], f"{fmt(fx['p99_ms'], 2)} ms", "<= 5 ms",
               lambda x: x <= 5, lambda x: f"{x - 5:.2f} ms over")
        if fx.get("server_within_5ms") is not None:
            w5 = fx["server_within_5ms"]
            target(f"(context) the {client} run seen by the proxy (first byte to response, its histogram)",
                   w5, f"p99 <= {fmt(fx['server_p99_le_ms'], 1)} ms; {pct(w5)} within 5 ms; Kafka round "
                   f"trip p99 <= {fmt(fx.get('rtt_p99_le_ms'), 2)} ms; its runtime more than 5 ms late "
                   f"in {pct(fx.get('lag_over_5ms'))} of its 10 ms probes",
                   ">= 99 % within 5 ms", lambda x: x >= 0.99, lambda x: f"{(0.99 - x) * 100:.2f} points short")
        if fh:
            target(f"(context) {client} at the same rate against the no-op GET /healthz: the floor",
                   fh["p99_ms"], f"p50 {fmt(fh['p50_ms'], 2)} / p99 {fmt(fh['p99_ms'], 2)} ms; webhook p99 "
                   f"minus this floor {fmt(fx['p99_ms'] - fh['p99_ms'], 2)} ms",
                   "p99 <= 5 ms", lambda x: x <= 5, lambda x: f"{x - 5:.2f} ms over with no Kafka work at all")
    fo = R.get("fixed-100-ohahalf")
    if fo:
        sustained = fo["rps"] >= 0.97 * fo["rate"]
        target(f"(context) p50 / p99 at half of oha's own closed-loop peak ({fmt(fo['rate'])}/s)",
               fo["p99_ms"], f"{fmt(fo['p50_ms'], 2)} / {fmt(fo['p99_ms'], 2)} ms"
               + ("" if sustained else f" (rate not sustained: {fmt(fo['rps'])}/s)"),
               "p50 <= 1.5, p99 <= 5 ms", lambda x: x <= 5 and fo["p50_ms"] <= 1.5,
               lambda x: f"p50 {fo['p50_ms'] - 1.5:+.2f} ms, p99 {x - 5:+.2f} ms vs goal")
    v = rss["rss_max_kb"] / 1024 if rss and rss.get("rss_max_kb") else None
    target("RSS with 1,000 keep-alive connections under load", v, f"{fmt(v, 1)} MiB", "<= 32 MiB",
           lambda x: x <= 32, lambda x: f"{x - 32:.1f} MiB over")
    v = sc["syscalls_per_req"] if sc else None
    target("syscalls per webhook request (256 conns)", v, f"{fmt(v, 2)}", "<= 2.2",
           lambda x: x <= 2.2, lambda x: f"{x - 2.2:.2f} over ({x / 2.2:.1f}x)")

    w("## Notes\n")
    w("- Closed-loop numbers (wrk) are limited by the machine: wrk, the server and the broker share "
      "its CPUs. The ratios are the point.")
    w("- Strimzi Kafka Bridge 0.33.1 creates one source endpoint, and with it one `KafkaProducer`, "
      "per HTTP connection (`HttpBridge.processProducer`, `HttpSourceBridgeEndpoint.open`), so at "
      "64/256 connections it runs 64/256 producers, each with its own network thread and batches. "
      "It sends from `CompletableFuture.runAsync` and answers from `whenCompleteAsync`, both "
      "without an executor; with fewer than 3 CPUs the JVM's common pool has parallelism 1, and "
      "then the JDK starts a new thread for every such task, two per request. So the bridge is "
      "measured as shipped and again with `-Djava.util.concurrent.ForkJoinPool.common.parallelism=2`; "
      "the targets use its better result. Both with acks=all, WARN logging, 512 MiB heap.")
    w("- The last DRAIN seconds of each wrk run send no-op requests (see docs/benchmarks.md); wrk's "
      "latency percentiles include them.")
    w("")
    w("## Ratios and targets\n")
    w("| target | measured | goal | verdict |")
    w("|---|---|---|---|")
    out.extend(rows)
    w("")
    w("## Commands\n")
    w("```")
    for r in R.values():
        if r.get("cmd"):
            w(f"# {r['name']}")
            w(r["cmd"])
    for c in M.get("commands", []):
        w(c)
    w("```")
    print("\n".join(out))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="sub", required=True)
    s = sub.add_parser("sample")
    s.add_argument("out")
    s.add_argument("pids", nargs="+", type=int)
    s.add_argument("--interval", type=float, default=0.2)
    s.add_argument("--loadgen", default="wrk")
    s = sub.add_parser("quiet")
    s.add_argument("--threshold", type=float, default=0.3)
    s.add_argument("--max-wait", type=float, default=60)
    s.add_argument("--exclude", type=int, nargs="*", default=[])

    def common(s):
        s.add_argument("--results", required=True)
        s.add_argument("--name", required=True)
        s.add_argument("--target", default="kafka-webhook")
        s.add_argument("--mode", default="webhook")
        s.add_argument("--size", type=int, default=0)
        s.add_argument("--conns", type=int, default=0)
        s.add_argument("--duration", type=float, default=0)
        s.add_argument("--cmd", dest="cmd_line", default="")
        s.add_argument("--kafka-before", type=int)
        s.add_argument("--kafka-after", type=int)

    s = sub.add_parser("wrk"); common(s)
    s.add_argument("--wrk-out", required=True)
    s.add_argument("--samples")
    s.add_argument("--broker-col", type=int)
    s.add_argument("--t-start", type=float, default=0)
    s = sub.add_parser("fixed"); common(s)
    s.add_argument("--client", choices=("oha", "pacer"), required=True)
    s.add_argument("--json-out", required=True)
    s.add_argument("--rate", type=float, default=0)
    s.add_argument("--samples")
    s.add_argument("--t-start", type=float, default=0)
    s.add_argument("--server-hist-before")
    s.add_argument("--server-hist-after")
    s.add_argument("--rtt-hist-before")
    s.add_argument("--rtt-hist-after")
    s.add_argument("--lag-hist-before")
    s.add_argument("--lag-hist-after")
    s = sub.add_parser("perf"); common(s)
    s.add_argument("--out", required=True)
    s.add_argument("--variant", default="default")
    s = sub.add_parser("strace"); common(s)
    s.add_argument("--strace-out", required=True)
    s.add_argument("--wrk-out", required=True)
    s.add_argument("--window-requests", type=int, required=True)
    s = sub.add_parser("pick")
    s.add_argument("--results", required=True)
    s.add_argument("tries", nargs="+")
    s = sub.add_parser("get")
    s.add_argument("results"); s.add_argument("rec_name"); s.add_argument("field")
    s = sub.add_parser("report")
    s.add_argument("results"); s.add_argument("meta")
    a = p.parse_args()
    fn = {"sample": cmd_sample, "wrk": cmd_wrk, "fixed": cmd_fixed, "perf": cmd_perf,
          "strace": cmd_strace, "get": cmd_get, "report": cmd_report, "pick": cmd_pick,
          "quiet": cmd_quiet}[a.sub]
    sys.exit(fn(a))


if __name__ == "__main__":
    main()
