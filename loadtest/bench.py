#!/usr/bin/python3
"""otter side by side with MariaDB's own replication, in one run.

    make bench                              # SCENARIO=oltp, then the steady state
    make bench SCENARIO=all                 # bulk single oltp wide hot many-tables
    make bench SCENARIO=bulk SCALE=0.2 STEADY_RATES=
    loadtest/bench.py --scenario hot --steady-rates 1000,5000 --steady-secs 30 --profile

For each scenario, on this machine and its local stack (infra/up.sh):

 1. setup (not timed): the scenario's dataset is created on the source with sysbench
    and copied to the target and to the native replica with mariadb-dump, so all three
    start identical; then the binlog is flushed and its position noted (START);
 2. workload: sysbench against the source, recording the backlog START..END;
 3. capture alone: otter-capture from START to END into fresh topics; and
    `mariadb-binlog -v` decoding the same range, for reference;
 4. native baseline: the MariaDB replica (serial SQL thread) replicates START..END,
    timed from START SLAVE to caught up;
 5. otter: capture + broker + apply on the same backlog into the target, timed to
    caught up (apply's committed offsets cover every record), then `verify`.

Then the steady state: sysbench oltp_write_only at fixed row rates for --steady-secs
each with otter and the native replica both running, end-to-end lag sampled from one
heartbeat row on the source (`bench.heartbeat`, written every 50 ms) as it appears on
the target and on the replica; the same probe measures both.

Output: a table on stderr, `loadtest/out/<stamp>/results.json`, a chart `results.png`
next to it, and dated rows appended to loadtest/RESULTS.md.

Invariants: every number printed comes from this run; a run that cannot verify its
target (or the replica) against the source fails instead of reporting a time.
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pymysql

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTTER_VAR = os.environ.get("OTTER_VAR", os.path.join(REPO, ".otter"))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
BIN = os.path.join(TARGET_DIR, "release")
SOURCE, TARGET, REPLICA = 3307, 3308, 3309
BROKERS = "127.0.0.1:9093"  # the memory-engine Tansu (see README: why not sqlite)
METRICS_PORT = 19464
DB = "bench"
LUA = os.path.join(REPO, "loadtest", "sysbench")
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------- servers


def connect(port, database=None):
    return pymysql.connect(host="127.0.0.1", port=port, user="otter", password="otter",
                           database=database, autocommit=True, connect_timeout=10)


def query(port, sql, args=None, dict_rows=False):
    con = connect(port)
    try:
        cur = con.cursor(pymysql.cursors.DictCursor if dict_rows else pymysql.cursors.Cursor)
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        con.close()


def master_pos():
    row = query(SOURCE, "SHOW MASTER STATUS")[0]
    return row[0], int(row[1])


def rows_changed(port):
    """The server's count of rows written, updated and deleted by handlers so far."""
    rows = query(port, "SHOW GLOBAL STATUS WHERE Variable_name IN "
                       "('Handler_write','Handler_update','Handler_delete')")
    return sum(int(v) for _, v in rows)


def pid_of(name):
    with open(os.path.join(OTTER_VAR, "run", f"{name}.pid")) as f:
        return int(f.read().strip())


def cpu_secs(pid):
    """user + system CPU seconds of a running process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sysbench(script, command, port=SOURCE, **opts):
    path = os.path.join(LUA, script + ".lua") if os.path.exists(os.path.join(LUA, script + ".lua")) else script
    args = ["sysbench", "--db-driver=mysql", "--mysql-host=127.0.0.1", f"--mysql-port={port}",
            "--mysql-user=otter", "--mysql-password=otter", f"--mysql-db={DB}"]
    args += [f"--{k.replace('_', '-')}={v}" for k, v in opts.items()] + [path, command]
    out = subprocess.run(args, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"sysbench {script} {command} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return out.stdout


def reset_replica():
    for stmt in ("STOP SLAVE", "RESET SLAVE ALL"):
        query(REPLICA, stmt)


def fresh_databases(setup):
    """Empty `bench` everywhere, run the setup on the source, copy it to target and replica."""
    reset_replica()
    for port in (SOURCE, TARGET, REPLICA):
        query(port, f"DROP DATABASE IF EXISTS {DB}")
    query(SOURCE, f"CREATE DATABASE {DB}")
    for script, command, opts in setup:
        sysbench(script, command, **opts)
    dump = subprocess.Popen(["mariadb-dump", "--no-defaults", "-h127.0.0.1", f"-P{SOURCE}", "-uotter",
                             "-potter", "--single-transaction", "--databases", DB],
                            stdout=subprocess.PIPE)
    loads = [subprocess.Popen(["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{p}", "-uotter", "-potter"],
                              stdin=subprocess.PIPE) for p in (TARGET, REPLICA)]
    for chunk in iter(lambda: dump.stdout.read(1 << 20), b""):
        for load in loads:
            load.stdin.write(chunk)
    for load in loads:
        load.stdin.close()
    if dump.wait() != 0 or any(load.wait() != 0 for load in loads):
        raise BenchError("copying the setup to the target and the replica failed")
    query(SOURCE, "FLUSH BINARY LOGS")
    return master_pos()


def fresh_broker():
    """Restarts the memory-engine Tansu (:9093) empty. The engine keeps every topic in RAM
    and serves metadata for all of them, so an earlier scenario's topics (1,000 for
    many-tables) slowed every scenario after it: the steady-state p50 at 1k rows/s went
    from 22 to 88 ms in bench-1207125905."""
    pidfile = os.path.join(OTTER_VAR, "run", "tansu-bench.pid")
    try:
        with open(pidfile) as f:
            os.kill(int(f.read().strip()), signal.SIGTERM)
    except (OSError, ValueError):
        pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", 9093), timeout=0.2).close()
            time.sleep(0.1)
        except OSError:
            break
    # start_bench_broker's EXIT trap would stop the broker with this shell; bench.sh's
    # own trap stops the new one (it reads the same pid file).
    out = subprocess.run(["bash", "-c", f"source '{REPO}/infra/lib.sh' && start_bench_broker && trap - EXIT"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"restarting the benchmark broker failed:\n{out.stdout}{out.stderr}")


def start_replica(start):
    file, pos = start
    query(REPLICA, "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='otter', "
                   "MASTER_PASSWORD='otter', MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s, MASTER_USE_GTID=no",
          (SOURCE, file, pos))
    query(REPLICA, "START SLAVE")


def replica_at(end):
    """True once the replica's SQL thread has executed the source binlog up to `end`."""
    st = query(REPLICA, "SHOW SLAVE STATUS", dict_rows=True)[0]
    if st["Slave_SQL_Running"] != "Yes" and st["Last_SQL_Error"]:
        raise BenchError(f"native replica stopped: {st['Last_SQL_Error']}")
    return (st["Relay_Master_Log_File"], int(st["Exec_Master_Log_Pos"])) >= end


def verify(port, what):
    out = subprocess.run([os.path.join(BIN, "otter-apply"), "verify", "--source",
                          f"mysql://otter:otter@127.0.0.1:{SOURCE}", "--target",
                          f"mysql://otter:otter@127.0.0.1:{port}", "--tables", DB + r"\..*"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"verify: {what} differs from the source:\n{out.stdout[-3000:]}{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


# ------------------------------------------------------------------------------ otter


class Proc:
    """A child process whose CPU time and peak RSS are read from its rusage."""

    def __init__(self, name, args, out):
        self.name = name
        self.log = os.path.join(out, name + ".log")
        self.stdout = os.path.join(out, name + ".out")
        self.start = time.monotonic()
        with open(self.log, "w") as err, open(self.stdout, "w") as so:
            self.p = subprocess.Popen(args, stdout=so, stderr=err)
        self.usage = None
        self.status = None
        RUNNING.append(self)

    def alive(self):
        if self.usage is not None:
            return False
        pid, status, usage = os.wait4(self.p.pid, os.WNOHANG)
        if pid == 0:
            return True
        self._done(status, usage)
        return False

    def _done(self, status, usage):
        self.status, self.usage, self.wall = status, usage, time.monotonic() - self.start
        self.p.returncode = os.waitstatus_to_exitcode(status)

    def wait(self, term=False, timeout=120):
        if self.usage is None and term:
            self.p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.alive():
            if time.monotonic() > deadline:
                self.p.kill()
            time.sleep(0.05)
        if self.p.returncode not in (0, -signal.SIGTERM):
            raise BenchError(f"{self.name} exited with {self.p.returncode}; last lines of {self.log}:\n"
                             + tail(self.log))
        return self

    def cpu(self):
        return self.usage.ru_utime + self.usage.ru_stime

    def rss_mib(self):
        return self.usage.ru_maxrss / 1024


RUNNING = []  # every Proc started, killed on the way out if still running


def tail(path, n=20):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-n:])


def configs(run, start, out, partitions, include):
    """Writes <run>.capture.toml and <run>.apply.toml from the example configurations."""
    with open(os.path.join(REPO, "services/capture/config.example.toml")) as f:
        cap = f.read()
    subs = {"pipeline": f'"{run}"', "topic_prefix": f'"{run}"', "start": f'"{start[0]}:{start[1]}"',
            "partitions": str(partitions), "brokers": f'"{BROKERS}"',
            "include": json.dumps([include])}
    for key, val in subs.items():
        cap = re.sub(rf"(?m)^{key} = .*$", lambda _m, k=key, v=val: f"{k} = {v}", cap)
    with open(os.path.join(REPO, "services/apply/config.example.toml")) as f:
        app = f.read().split("# Mapping rules")[0]
    for key, val in {"pipeline": f'"{run}"', "topic_prefix": f'"{run}"', "brokers": f'"{BROKERS}"'}.items():
        app = re.sub(rf"(?m)^{key} = .*$", lambda _m, k=key, v=val: f"{k} = {v}", app)
    paths = os.path.join(out, run + ".capture.toml"), os.path.join(out, run + ".apply.toml")
    for path, text in zip(paths, (cap, app)):
        with open(path, "w") as f:
            f.write(text)
    return paths


def capture(run, start, out, args, stop_at=None, metrics="127.0.0.1:0"):
    cap_cfg, _ = configs(run, start, out, args.partitions, DB + r"\..*")
    cmd = [os.path.join(BIN, "otter-capture"), "run", "--config", cap_cfg, "--metrics-listen", metrics]
    if stop_at:
        cmd += ["--stop-at", f"{stop_at[0]}:{stop_at[1]}"]
    return Proc(run + ".capture", cmd, out)


def apply(run, out, metrics="127.0.0.1:0"):
    cfg = os.path.join(out, run + ".apply.toml")
    # OTTER_BENCH_APPLY_WRAP: a command put in front of otter-apply (e.g. `heaptrack -o
    # /tmp/ht`) to study one run; its figures then include the wrapper's cost.
    wrap = os.environ.get("OTTER_BENCH_APPLY_WRAP", "").split()
    return Proc(run + ".apply", wrap + [os.path.join(BIN, "otter-apply"), "run", "--config", cfg,
                                        "--metrics-listen", metrics], out)


def applied(run):
    """Records apply has committed; 0 until apply has created its state tables."""
    try:
        rows = query(TARGET, "SELECT COALESCE(SUM(next_offset), 0) FROM otter.apply_position "
                     "WHERE pipeline = %s", (run,))
    except pymysql.err.ProgrammingError as e:
        if e.args[0] in (1049, 1146):  # unknown database / table: apply not started yet
            return 0
        raise
    return int(rows[0][0])


def summary_of(proc):
    with open(proc.stdout) as f:
        return json.loads(f.read().strip().splitlines()[-1])


class RateSampler(threading.Thread):
    """Samples a server's InnoDB row-change count every 0.5 s: (seconds, rows/s)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.points, self.stopping = port, [], threading.Event()

    def run(self):
        t0, last = time.monotonic(), rows_changed(self.port)
        prev_t = t0
        while not self.stopping.wait(0.5):
            now, n = time.monotonic(), rows_changed(self.port)
            self.points.append((round(now - t0, 2), round((n - last) / (now - prev_t))))
            last, prev_t = n, now

    def stop(self):
        self.stopping.set()
        self.join()
        return self.points


class Perf:
    """perf record -g on one process while it runs; a text report when stopped."""

    def __init__(self, name, pid, out):
        self.name, self.out = name, out
        self.data = os.path.join(out, f"perf-{name}.data")
        self.p = subprocess.Popen(["perf", "record", "-q", "-g", "-F", "499", "-o", self.data, "-p", str(pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        self.p.wait()
        report = os.path.join(self.out, f"perf-{self.name}.txt")
        with open(report, "w") as f:
            subprocess.run(["perf", "report", "-i", self.data, "--stdio", "--no-children",
                            "--percent-limit", "1", "-g", "none", "--sort", "dso,symbol"],
                           stdout=f, stderr=subprocess.DEVNULL)
        return report


# -------------------------------------------------------------------------- scenarios


def scenarios(scale):
    n = lambda x: max(1, int(x * scale))  # noqa: E731
    oltp_size = n(100000)
    return {
        "bulk": dict(
            what="sysbench oltp_insert prepare: 8 tables x 125,000 rows, 4 threads (multi-row INSERTs)",
            setup=[], workload=[("oltp_insert", "prepare", dict(tables=8, table_size=n(125000), threads=4))]),
        "single": dict(
            what="sysbench oltp_insert run: 200,000 autocommit one-row INSERTs, 4 threads",
            setup=[("oltp_insert", "prepare", dict(tables=8, table_size=1))],
            workload=[("oltp_insert", "run", dict(tables=8, table_size=1, events=n(200000), threads=4, time=0))]),
        "oltp": dict(
            what="sysbench oltp_write_only run on 8 x 100,000 rows: 50,000 transactions, 4 threads",
            setup=[("oltp_write_only", "prepare", dict(tables=8, table_size=oltp_size, threads=4))],
            workload=[("oltp_write_only", "run", dict(tables=8, table_size=oltp_size, events=n(50000),
                                                     threads=4, time=0))]),
        "wide": dict(
            what="wide.lua: 2-50 KB rows (MEDIUMTEXT+MEDIUMBLOB), 4,000 transactions of an UPDATE "
                 "(+ an INSERT every 4th)",
            setup=[("wide", "prepare", dict(table_size=1000))],
            workload=[("wide", "run", dict(table_size=1000, events=n(4000), threads=2, time=0))]),
        "hot": dict(
            what="hot.lua: 20,000 transactions of 10 UPDATEs over 100 rows, 4 threads",
            setup=[("hot", "prepare", dict(table_size=100))],
            workload=[("hot", "run", dict(table_size=100, events=n(20000), threads=4, time=0))]),
        "many-tables": dict(
            what="many_tables.lua: 1,000 tables, 50,000 transactions of an INSERT + an UPDATE, 4 threads",
            setup=[("many_tables", "prepare", dict(tables=1000, table_size=10, threads=4))],
            workload=[("many_tables", "run", dict(tables=1000, table_size=10, events=n(50000), threads=4,
                                                  time=0))]),
    }


def binlog_files(start, end):
    names = [r[0] for r in query(SOURCE, "SHOW BINARY LOGS")]
    return [os.path.join(OTTER_VAR, "mariadb-source", f) for f in names if start[0] <= f <= end[0]]


def wait_until(what, done, progress, timeout):
    t0, last_log = time.monotonic(), time.monotonic()
    while not done():
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"{what}: not caught up after {timeout} s ({progress()})")
        if time.monotonic() - last_log > 5:
            log(f"  {what}: {progress()}")
            last_log = time.monotonic()
        time.sleep(0.1)
    return time.monotonic() - t0


def wait_for_topics(cap, tables, timeout=30):
    """Until the capture has its topic ready for each of `tables` (or has finished).

    Apply starts after that, as it runs in production (long before a table's first
    change): started together, its group rebalances while the topics appear, and a
    partition then resumes inside a record batch, which Tansu's memory engine does not
    serve (see loadtest/README.md); the capture's time still counts from its start."""
    t0 = time.monotonic()
    while cap.alive() and time.monotonic() - t0 < timeout:
        with open(cap.log, errors="replace") as f:
            if sum("topic ready" in line for line in f) >= tables:
                return
        time.sleep(0.02)


def run_scenario(name, sc, args, out, stamp):
    log(f"== {name}: {sc['what']}")
    fresh_broker()
    start = fresh_databases(sc["setup"])
    src0 = rows_changed(SOURCE)
    t = time.monotonic()
    for script, command, opts in sc["workload"]:
        sysbench(script, command, **opts)
    source_wall = time.monotonic() - t
    end = master_pos()
    source_rows = rows_changed(SOURCE) - src0
    size = sum(os.path.getsize(f) for f in binlog_files(start, end))
    log(f"  workload: {source_rows} rows in {source_wall:.1f} s on the source, binlog {size >> 20} MiB")

    # Capture alone, then the server's own decoder on the same range.
    run = f"b{stamp}{name.replace('-', '')}c"
    cap = alone = capture(run, start, out, args, stop_at=end).wait(timeout=args.timeout)
    summ = summary_of(cap)
    changes, records = summ["changes"], summ["records"]
    log(f"  capture alone: {changes} changes, {records} records in {cap.wall:.2f} s")
    files = binlog_files(start, end)
    t = time.monotonic()
    subprocess.run(["mariadb-binlog", "--no-defaults", "-v", f"--start-position={start[1]}",
                    f"--stop-position={end[1]}"] + files, stdout=subprocess.DEVNULL, check=True)
    decode_wall = time.monotonic() - t

    # Native serial replica.
    replica_pid = pid_of("replica")
    cpu0 = cpu_secs(replica_pid)
    sampler = RateSampler(REPLICA)
    sampler.start()
    t = time.monotonic()
    start_replica(start)
    native_wall = wait_until("native replica", lambda: replica_at(end),
                             lambda: query(REPLICA, "SHOW SLAVE STATUS", dict_rows=True)[0]["Exec_Master_Log_Pos"],
                             args.timeout)
    native_series = sampler.stop()
    native_cpu = cpu_secs(replica_pid) - cpu0
    log(f"  native replica: caught up in {native_wall:.2f} s")

    # otter: capture + broker + apply together.
    run = f"b{stamp}{name.replace('-', '')}o"
    broker_pid, target_pid = pid_of("tansu-bench"), pid_of("target")
    bcpu0, tcpu0 = cpu_secs(broker_pid), cpu_secs(target_pid)
    sampler = RateSampler(TARGET)
    sampler.start()
    t_otter = time.monotonic()
    cap = capture(run, start, out, args, stop_at=end)
    wait_for_topics(cap, len(query(SOURCE, "SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = %s", (DB,))))
    app = apply(run, out)
    perfs = []
    if args.profile:
        time.sleep(0.3)
        perfs = [Perf(f"{name}-capture", cap.p.pid, out), Perf(f"{name}-apply", app.p.pid, out),
                 Perf(f"{name}-target", target_pid, out)]

    def otter_done():
        if not app.alive():
            raise BenchError(f"otter-apply exited; see {app.log}:\n{tail(app.log)}")
        return applied(run) >= records

    wait_until("otter", otter_done, lambda: f"{applied(run)}/{records} records applied", args.timeout)
    otter_wall = time.monotonic() - t_otter
    otter_series = sampler.stop()
    profiles = [p.stop() for p in perfs]
    app.wait(term=True)
    cap.wait(timeout=30)
    broker_cpu, target_cpu = cpu_secs(broker_pid) - bcpu0, cpu_secs(target_pid) - tcpu0
    log(f"  otter: caught up in {otter_wall:.2f} s")
    v_otter = verify(TARGET, "otter's target")
    v_native = verify(REPLICA, "the native replica")
    log(f"  verify: otter {v_otter}; native {v_native}")
    reset_replica()
    rate = lambda secs: round(changes / secs) if secs > 0 else None  # noqa: E731
    return dict(
        scenario=name, what=sc["what"], row_changes=changes, records=records, binlog_bytes=size,
        source=dict(secs=round(source_wall, 2), rows_per_sec=rate(source_wall)),
        capture_alone=dict(secs=round(alone.wall, 2), rows_per_sec=rate(alone.wall),
                           cpu_secs=round(alone.cpu(), 2), rss_mib=round(alone.rss_mib(), 1)),
        mariadb_binlog=dict(secs=round(decode_wall, 2), rows_per_sec=rate(decode_wall)),
        native=dict(secs=round(native_wall, 2), rows_per_sec=rate(native_wall),
                    replica_cpu_secs=round(native_cpu, 2), series=native_series),
        otter=dict(secs=round(otter_wall, 2), rows_per_sec=rate(otter_wall),
                   capture_cpu_secs=round(cap.cpu(), 2), capture_rss_mib=round(cap.rss_mib(), 1),
                   apply_cpu_secs=round(app.cpu(), 2), apply_rss_mib=round(app.rss_mib(), 1),
                   broker_cpu_secs=round(broker_cpu, 2), target_cpu_secs=round(target_cpu, 2),
                   series=otter_series, verify=v_otter, profiles=profiles),
        ratio=round(native_wall / otter_wall, 2),
    )


# ----------------------------------------------------------------------- steady state


class Heartbeat(threading.Thread):
    """Writes (seq, client time) into bench.heartbeat on the source every `every` s."""

    def __init__(self, every=0.05):
        super().__init__(daemon=True)
        self.every, self.seq, self.stopping = every, 0, threading.Event()

    def run(self):
        con = connect(SOURCE, DB)
        cur = con.cursor()
        while not self.stopping.wait(self.every):
            self.seq += 1
            cur.execute("UPDATE heartbeat SET seq = %s, t = %s WHERE id = 1", (self.seq, time.time()))
        con.close()

    def stop(self):
        self.stopping.set()
        self.join()


class LagProbe(threading.Thread):
    """Polls bench.heartbeat on one server every 5 ms; each new seq is one lag sample:
    (seconds since the probe started, now - the time the source row was written)."""

    def __init__(self, port, t0):
        super().__init__(daemon=True)
        self.port, self.t0, self.samples, self.seq, self.stopping = port, t0, [], 0, threading.Event()

    def run(self):
        con = connect(self.port, DB)
        cur = con.cursor()
        t0 = self.t0
        while not self.stopping.wait(0.005):
            try:
                cur.execute("SELECT seq, t FROM heartbeat WHERE id = 1")
            except pymysql.err.ProgrammingError as e:
                if e.args[0] == 1146:  # not replicated yet
                    continue
                raise
            row = cur.fetchone()
            if row and row[0] > self.seq:
                self.seq = row[0]
                self.samples.append((round(time.monotonic() - t0, 3), max(0.0, time.time() - row[1])))
        con.close()

    def stop(self):
        self.stopping.set()
        self.join()


def scrape_lag():
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=1).read().decode()
    except OSError:
        return None
    m = re.search(r"(?m)^otter_apply_lag_seconds(?:\{[^}]*\})? ([0-9.eE+-]+)$", text)
    return float(m.group(1)) if m else None


# Histograms scraped at the start and end of each steady phase: their means over the
# phase say where the lag goes (capture: commit read -> broker ack; apply: per batch).
# Keyed by the metrics port's offset from METRICS_PORT (apply 0, capture 1).
STAGES = {0: ["otter_apply_commit_seconds", "otter_apply_batch_events", "otter_apply_statement_seconds"],
          1: ["otter_capture_publish_seconds"]}


def scrape_stages():
    """{metric: (sum, count)} over every label set; missing metrics are absent."""
    got = {}
    for offset, names in STAGES.items():
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT + offset}/metrics", timeout=1).read().decode()
        except OSError:
            continue
        for name in names:
            total = [0.0, 0.0]
            for i, part in enumerate(("sum", "count")):
                for m in re.finditer(rf"(?m)^{name}_{part}(?:\{{[^}}]*\}})? ([0-9.eE+-]+)$", text):
                    total[i] += float(m.group(1))
            got[name] = tuple(total)
    return got


def stage_means(before, after, secs):
    """Per metric: the mean over the phase and the count per second."""
    out = {}
    for name, (s1, c1) in after.items():
        s0, c0 = before.get(name, (0.0, 0.0))
        if c1 > c0:
            out[name] = dict(mean=round((s1 - s0) / (c1 - c0), 4), per_sec=round((c1 - c0) / secs, 1))
    return out


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def steady_state(args, out, stamp):
    size = max(1, int(100000 * args.scale))
    log(f"== steady state: oltp_write_only at {args.steady_rates} rows/s, {args.steady_secs} s each")
    fresh_broker()
    start = fresh_databases([("oltp_write_only", "prepare", dict(tables=8, table_size=size, threads=4))])
    # The heartbeat table is created in the stream, so both sides create it themselves.
    query(SOURCE, f"CREATE TABLE {DB}.heartbeat (id INT PRIMARY KEY, seq BIGINT NOT NULL, t DOUBLE NOT NULL)")
    query(SOURCE, f"INSERT INTO {DB}.heartbeat VALUES (1, 0, 0)")
    run = f"b{stamp}steady"
    start_replica(start)
    cap = capture(run, start, out, args, metrics=f"127.0.0.1:{METRICS_PORT + 1}")
    app = apply(run, out, metrics=f"127.0.0.1:{METRICS_PORT}")
    hb = Heartbeat()
    hb.start()
    t_probe0 = time.monotonic()
    probes = {"otter": LagProbe(TARGET, t_probe0), "native": LagProbe(REPLICA, t_probe0)}
    for p in probes.values():
        p.start()
    wait_until("steady state: both sides see the heartbeat",
               lambda: all(p.seq > 0 for p in probes.values()), lambda: "waiting", 60)
    time.sleep(3)
    phases, metric = [], []
    for r in args.steady_rates:
        tps = max(1, round(r / 4))  # oltp_write_only: 4 row changes per transaction
        log(f"  {r} rows/s ({tps} transactions/s) for {args.steady_secs} s")
        n0 = rows_changed(SOURCE)
        stages0 = scrape_stages()
        t_begin = time.monotonic()
        done = threading.Event()
        sb = threading.Thread(target=lambda: (sysbench("oltp_write_only", "run", tables=8, table_size=size,
                                                       threads=4, rate=tps, time=args.steady_secs,
                                                       events=0), done.set()), daemon=True)
        sb.start()
        while not done.wait(1.0):
            if not app.alive() or not cap.alive():
                raise BenchError(f"otter exited during the steady state; see {app.log} and {cap.log}")
            metric.append((round(time.monotonic() - t_probe0, 1), scrape_lag()))
        sb.join()
        t_end = time.monotonic()
        achieved = (rows_changed(SOURCE) - n0) / (t_end - t_begin)
        stages = stage_means(stages0, scrape_stages(), t_end - t_begin)
        log("    stages: " + "; ".join(f"{k.replace('otter_', '')} mean {v['mean']} ({v['per_sec']}/s)"
                                       for k, v in stages.items()))
        phases.append(dict(rate=r, achieved=round(achieved), begin=t_begin - t_probe0, end=t_end - t_probe0,
                           stages=stages))
        time.sleep(2)
    hb.stop()
    final = hb.seq
    wait_until("steady state: drain", lambda: all(p.seq >= final for p in probes.values()),
               lambda: {k: p.seq for k, p in probes.items()}, args.timeout)
    for p in probes.values():
        p.stop()
    app.wait(term=True)
    cap.wait(term=True)
    v_otter, v_native = verify(TARGET, "otter's target"), verify(REPLICA, "the native replica")
    log(f"  verify: otter {v_otter}; native {v_native}")
    reset_replica()
    result = dict(table_size=size, secs=args.steady_secs, phases=[], otter_lag_metric=metric,
                  capture_cpu_secs=round(cap.cpu(), 2), capture_rss_mib=round(cap.rss_mib(), 1),
                  apply_cpu_secs=round(app.cpu(), 2), apply_rss_mib=round(app.rss_mib(), 1),
                  series={k: [(round(t, 3), round(v, 4)) for t, v in p.samples] for k, p in probes.items()})
    for ph in phases:
        row = dict(rate=ph["rate"], achieved=ph["achieved"], begin=round(ph["begin"], 1), end=round(ph["end"], 1),
                   stages=ph["stages"])
        for k, p in probes.items():
            lags = [v for t, v in p.samples if ph["begin"] <= t <= ph["end"]]
            row[k] = dict(samples=len(lags), p50_ms=ms(pct(lags, 50)), p99_ms=ms(pct(lags, 99)),
                          max_ms=ms(max(lags) if lags else None))
        result["phases"].append(row)
    return result


def ms(v):
    return None if v is None else round(v * 1000, 1)


# --------------------------------------------------------------------------- reporting


def machine():
    with open("/proc/cpuinfo") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.machine())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    version = query(SOURCE, "SELECT VERSION()")[0][0].split("-")[0]
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB, MariaDB {version}, Tansu memory"


def print_table(results, steady):
    cols = ["scenario", "row changes", "source r/s", "native s", "native r/s", "otter s", "otter r/s",
            "otter/native", "capture r/s", "mariadb-binlog r/s", "capture CPU s/RSS", "apply CPU s/RSS"]
    rows = [[r["scenario"], r["row_changes"], r["source"]["rows_per_sec"], r["native"]["secs"],
             r["native"]["rows_per_sec"], r["otter"]["secs"], r["otter"]["rows_per_sec"], f"{r['ratio']}x",
             r["capture_alone"]["rows_per_sec"], r["mariadb_binlog"]["rows_per_sec"],
             f"{r['otter']['capture_cpu_secs']}/{r['otter']['capture_rss_mib']:.0f}M",
             f"{r['otter']['apply_cpu_secs']}/{r['otter']['apply_rss_mib']:.0f}M"] for r in results]
    table(cols, rows)
    if steady:
        cols = ["rate rows/s", "achieved", "otter p50 ms", "otter p99 ms", "otter max ms", "native p50 ms",
                "native p99 ms", "native max ms"]
        rows = [[p["rate"], p["achieved"], p["otter"]["p50_ms"], p["otter"]["p99_ms"], p["otter"]["max_ms"],
                 p["native"]["p50_ms"], p["native"]["p99_ms"], p["native"]["max_ms"]] for p in steady["phases"]]
        print(file=sys.stderr)
        table(cols, rows)


def table(cols, rows):
    widths = [max([len(str(c))] + [len(str(r[i])) for r in rows]) for i, c in enumerate(cols)]
    for r in [cols] + rows:
        print("  ".join(str(v).rjust(w) for v, w in zip(r, widths)), file=sys.stderr)


def chart(results, steady, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results) + (1 if steady else 0)
    fig, axes = plt.subplots(n, 1, figsize=(10, 3.2 * n), squeeze=False)
    axes = [a[0] for a in axes]
    i = 0
    if steady:
        ax = axes[0]
        for k, color in (("otter", "tab:blue"), ("native", "tab:orange")):
            pts = steady["series"][k]
            ax.plot([t for t, _ in pts], [v * 1000 for _, v in pts], color=color, lw=0.8, label=f"{k} lag")
        for ph in steady["phases"]:
            ax.axvspan(ph["begin"], ph["end"], color="grey", alpha=0.08)
            ax.text(ph["begin"], 0.97, f" {ph['rate']} rows/s", va="top", fontsize=8,
                    transform=ax.get_xaxis_transform())
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylabel("lag (ms)")
        ax.set_xlabel("seconds")
        ax.set_title("steady state: end-to-end lag from the source heartbeat (oltp_write_only)")
        ax.legend(loc="upper left")
        i = 1
    for r, ax in zip(results, axes[i:]):
        for k, color in (("otter", "tab:blue"), ("native", "tab:orange")):
            pts = r[k]["series"]
            ax.plot([t for t, _ in pts], [v for _, v in pts], color=color,
                    label=f"{k}: {r[k]['secs']} s, {r[k]['rows_per_sec']} rows/s")
        ax.set_title(f"catch-up, {r['scenario']}: {r['row_changes']} row changes (target rows/s over time)")
        ax.set_ylabel("rows/s")
        ax.set_xlabel("seconds")
        ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


SIDE_HEADER = ["| date | side by side | machine | row changes | native s | native rows/s | otter s | "
               "otter rows/s | otter/native | capture alone rows/s | mariadb-binlog rows/s | "
               "capture CPU s / RSS MiB | apply CPU s / RSS MiB | broker CPU s | run |",
               "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
STEADY_HEADER = ["| date | steady rows/s | machine | achieved | otter p50 / p99 / max ms | "
                 "native p50 / p99 / max ms | run |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]


def insert_rows(lines, header, rows):
    """Adds rows at the end of the table that starts with header (so it stays one
    Markdown table, notes below it untouched), or a new table at the end of the file."""
    if not rows:
        return lines
    try:
        i = lines.index(header[0])
    except ValueError:
        return lines + [""] + header + rows
    j = i + 1
    while j < len(lines) and lines[j].startswith("|"):
        j += 1
    return lines[:j] + rows + lines[j:]


def append_results(results, steady, desc, out):
    path = os.path.join(REPO, "loadtest", "RESULTS.md")
    with open(path) as f:
        lines = f.read().rstrip("\n").split("\n")
    date = datetime.date.today().isoformat()
    rel = os.path.relpath(out, REPO)
    side = []
    for r in results or []:
        o = r["otter"]
        side.append(f"| {date} | {r['scenario']} | {desc} | {r['row_changes']} | {r['native']['secs']} | "
                    f"{r['native']['rows_per_sec']} | {o['secs']} | {o['rows_per_sec']} | {r['ratio']}x | "
                    f"{r['capture_alone']['rows_per_sec']} | {r['mariadb_binlog']['rows_per_sec']} | "
                    f"{o['capture_cpu_secs']} / {o['capture_rss_mib']:.0f} | "
                    f"{o['apply_cpu_secs']} / {o['apply_rss_mib']:.0f} | {o['broker_cpu_secs']} | {rel} |")
    rates = []
    for p in (steady or {}).get("phases", []):
        o, n = p["otter"], p["native"]
        rates.append(f"| {date} | {p['rate']} | {desc} | {p['achieved']} | {o['p50_ms']} / {o['p99_ms']} / "
                     f"{o['max_ms']} | {n['p50_ms']} / {n['p99_ms']} / {n['max_ms']} | {rel} |")
    lines = insert_rows(lines, SIDE_HEADER, side)
    lines = insert_rows(lines, STEADY_HEADER, rates)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# -------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    names = list(scenarios(1).keys())
    ap.add_argument("--scenario", default="oltp", help=f"one of {', '.join(names)}, a comma list, all or none")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every workload's size")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--steady-rates", default="1000,5000,10000", help="row rates; empty = no steady state")
    ap.add_argument("--steady-secs", type=int, default=60)
    ap.add_argument("--profile", action="store_true", help="perf record capture, apply and the target mariadbd during catch-up")
    ap.add_argument("--timeout", type=int, default=900, help="seconds any one catch-up may take")
    ap.add_argument("--no-results", action="store_true", help="do not append to RESULTS.md")
    args = ap.parse_args()
    args.steady_rates = [int(x) for x in args.steady_rates.split(",") if x.strip()]
    chosen = {"all": names, "none": []}.get(args.scenario, [s.strip() for s in args.scenario.split(",") if s])
    for s in chosen:
        if s not in names:
            ap.error(f"unknown scenario {s!r} (one of {', '.join(names)})")
    stamp = datetime.datetime.now().strftime("%m%d%H%M%S")
    out = os.path.join(REPO, "loadtest", "out", "bench-" + stamp)
    os.makedirs(out, exist_ok=True)
    all_sc = scenarios(args.scale)
    results, steady = [], None
    try:
        for s in chosen:
            results.append(run_scenario(s, all_sc[s], args, out, stamp))
        if args.steady_rates:
            steady = steady_state(args, out, stamp)
    except BenchError as e:
        log(f"error: {e}")
        return 1
    finally:
        for proc in RUNNING:
            if proc.usage is None:
                proc.p.kill()
    desc = machine()
    doc = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), machine=desc, scale=args.scale,
               partitions=args.partitions, scenarios=results, steady=steady)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(file=sys.stderr)
    print_table(results, steady)
    chart(results, steady, os.path.join(out, "results.png"))
    if not args.no_results:
        append_results(results, steady, desc, out)
    log(f"results: {os.path.relpath(out, REPO)}/results.json, results.png"
        + ("" if args.no_results else "; rows appended to loadtest/RESULTS.md"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
