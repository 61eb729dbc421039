#!/usr/bin/python3
"""Fault injection: crash any part of a running pipeline at a random moment, then prove
that the target equals the source, with no row lost and no row duplicated.

    make chaos                                   # 20 rounds, random seed (printed)
    make chaos ROUNDS=3 SEED=7                   # what `make test` runs
    loadtest/chaos.py --rounds 20 --seed 42 --only kill-capture-active,restart-broker

Set-up (not timed): a fresh database `chaos` on the source and the target, a pipeline
defined with otterctl, two captures (active + hot standby) and two apply instances
sharing the partitions, all as separate processes of the release build (or of
$OTTER_BIN_DIR: `make test` runs the debug build its tests built), and two
writer threads running a randomized, seeded workload on the source: every column type,
multi-table transactions, rolled-back transactions, primary-key shifts, a table
without a primary key receiving duplicate rows (and deletes of one row of a duplicate
pair), and rows of several MiB.

Each round: the writers run; at a random moment one fault, or several at once, hits
(see FAULTS); the runner acts as the supervisor a deployment has (systemd, Kubernetes)
and restarts a killed process at once, with the same instance id. Then:
  recovery  a marker row written to the source the moment the fault is over (the
            process killed, the server back, the process resumed) until it is on the
            target: the time the pipeline needed to move again;
  catch-up  writers paused, until `otter-apply verify` finds source and target equal;
  checks    `verify` (row counts and per-chunk checksums, multisets for key-less
            tables), the duplicate counts of the key-less table compared row by row,
            every service process still running (none exited on its own), and no
            `panicked` in any service log.
A round fails when any check fails or the target is not equal within --catch-up-secs.

Output: a per-round table and a final "N passed, N failed" line on stdout,
`loadtest/out/chaos-<stamp>/results.json`, and the services' logs next to it. The exit
status is 0 only when every round passed.

Invariant: the verdict comes from comparing the servers' data, never from the
services' own reports.
"""

import argparse
import datetime
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pymysql

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTTER_VAR = os.environ.get("OTTER_VAR", os.path.join(REPO, ".otter"))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
BIN = os.environ.get("OTTER_BIN_DIR", os.path.join(TARGET_DIR, "release"))
SOURCE, TARGET = int(os.environ.get("OTTER_SOURCE_PORT", 3307)), int(os.environ.get("OTTER_TARGET_PORT", 3308))
ZK = "127.0.0.1:" + os.environ.get("OTTER_ZK_PORT", "2181")
BROKERS = "127.0.0.1:" + os.environ.get("OTTER_BROKER_PORT", "9092")
DB = "chaos"
ZK_SESSION_MS = 6000  # the services' default --zk-session-timeout-ms
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


class ChaosError(Exception):
    pass


def connect(port, database=None, timeout=5):
    return pymysql.connect(host="127.0.0.1", port=port, user="otter", password="otter",
                           database=database, autocommit=True, connect_timeout=timeout,
                           read_timeout=60, write_timeout=60, charset="utf8mb4")


def query(port, sql, args=None):
    con = connect(port)
    try:
        cur = con.cursor()
        cur.execute(sql, args)
        return cur.fetchall()
    finally:
        con.close()


def retrying(what, fn, secs=120):
    """fn() until it does not raise a connection error, for at most `secs`."""
    deadline = time.monotonic() + secs
    while True:
        try:
            return fn()
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as e:
            if time.monotonic() > deadline:
                raise ChaosError(f"{what}: still failing after {secs}s: {e}") from e
            time.sleep(0.2)


# ---------------------------------------------------------------------------- schema

SCHEMA = [
    """CREATE TABLE alltypes (
         id BIGINT PRIMARY KEY,
         ti TINYINT, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT, bu BIGINT UNSIGNED,
         dc DECIMAL(30,10), f FLOAT, d DOUBLE, b BIT(13),
         dt DATE, dtm DATETIME(6), ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(4), y YEAR,
         c CHAR(10), vc VARCHAR(200), vb VARBINARY(50), tt TINYTEXT, mt MEDIUMTEXT,
         bl BLOB, lb LONGBLOB, e ENUM('a','b','ç'), s SET('x','y','z'), j JSON,
         g BIGINT GENERATED ALWAYS AS (i + 1) VIRTUAL)""",
    "CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(20,2) NOT NULL, version INT NOT NULL)",
    """CREATE TABLE transfers (id BIGINT AUTO_INCREMENT PRIMARY KEY, src INT NOT NULL,
         dst INT NOT NULL, amount DECIMAL(20,2) NOT NULL, at DATETIME(6) NOT NULL)""",
    "CREATE TABLE nopk (k INT, v VARCHAR(20), n INT)",
    "CREATE TABLE marker (id INT PRIMARY KEY, at DATETIME(6) NOT NULL)",
]
ACCOUNTS = 50


def create_schema():
    for port in (SOURCE, TARGET):
        con = connect(port)
        cur = con.cursor()
        cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        cur.execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4")
        cur.execute(f"USE {DB}")
        for stmt in SCHEMA:
            cur.execute(stmt)
        # Seed rows exist on both sides before the pipeline starts.
        cur.executemany("INSERT INTO accounts VALUES (%s, 1000.00, 0)", [(i,) for i in range(ACCOUNTS)])
        con.close()


# ---------------------------------------------------------------------------- workload

def rand_text(rng, n, alphabet="abcxyzÅéßø€𝄞 '\"\\%_\n\t"):
    return "".join(rng.choice(alphabet) for _ in range(n))


def rand_row(rng, id_):
    def maybe(v):
        return None if rng.random() < 0.1 else v
    big = rng.random() < 0.004
    return (
        id_,
        maybe(rng.randint(-128, 127)),
        maybe(rng.randint(0, 65535)),
        maybe(rng.randint(-8388608, 8388607)),
        maybe(rng.randint(-2**31, 2**31 - 1)),
        maybe(rng.randint(0, 2**64 - 1)),
        maybe(f"{rng.randint(-10**19, 10**19)}.{rng.randint(0, 10**10 - 1):010d}"),
        maybe(rng.choice([0.0, -1.5, 3.25, 1e-3, 12345.678])),
        maybe(rng.uniform(-1e300, 1e300)),
        maybe(rng.randint(0, 2**13 - 1)),
        maybe(datetime.date(rng.randint(1000, 9999), rng.randint(1, 12), rng.randint(1, 28))),
        maybe(datetime.datetime(rng.randint(1000, 9999), rng.randint(1, 12), rng.randint(1, 28),
                                rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                                rng.randint(0, 999999))),
        maybe(datetime.datetime(rng.randint(1971, 2037), rng.randint(1, 12), rng.randint(1, 28),
                                rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59),
                                rng.randint(0, 999) * 1000)),
        maybe(f"{rng.choice('-+')}{rng.randint(0, 837)}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 9999):04d}"),
        maybe(rng.choice([0, rng.randint(1901, 2155)])),
        maybe(rand_text(rng, rng.randint(0, 10))),
        maybe(rand_text(rng, rng.randint(0, 200))),
        maybe(rng.randbytes(rng.randint(0, 50))),
        maybe(rand_text(rng, rng.randint(0, 60))),
        maybe(rand_text(rng, rng.randint(0, 3000))),
        maybe(rng.randbytes(rng.randint(0, 4000))),
        # A few rows of several MiB: they travel as chunked Kafka records.
        maybe(rng.randbytes(rng.randint(1 << 20, 3 << 20)) if big else rng.randbytes(rng.randint(0, 300))),
        maybe(rng.choice(["a", "b", "ç"])),
        maybe(",".join(sorted(rng.sample(["x", "y", "z"], rng.randint(0, 3))))),
        maybe(json.dumps({"n": rng.randint(-10**15, 10**15), "s": rand_text(rng, 8),
                          "a": [rng.random(), None, True], "o": {"k": "ü"}})),
    )


COLS = "id, ti, si, mi, i, bu, dc, f, d, b, dt, dtm, ts, tm, y, c, vc, vb, tt, mt, bl, lb, e, s, j"
PLACEHOLDERS = ", ".join(["%s"] * 25)


class Writer(threading.Thread):
    """One connection writing seeded random transactions; survives source restarts."""

    def __init__(self, n, seed, gate, stop, ids):
        super().__init__(daemon=True, name=f"writer-{n}")
        self.rng = random.Random(seed * 1000 + n)
        self.n, self.gate, self.stop, self.ids = n, gate, stop, ids
        self.rows = 0  # rows changed by committed transactions
        self.errors = 0
        self.idle = threading.Event()
        self.con = None

    def run(self):
        while not self.stop.is_set():
            if not self.gate.is_set():
                self.idle.set()
                self.gate.wait(0.2)
                continue
            self.idle.clear()
            try:
                if self.con is None:
                    self.con = connect(SOURCE, DB, timeout=2)
                    self.con.autocommit(False)
                self.rows += self.transaction(self.con.cursor())
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError):
                # The source went away mid-transaction: whether it committed is the
                # source's business; verify compares what the source has.
                self.errors += 1
                try:
                    self.con.close()
                except Exception:
                    pass
                self.con = None
                time.sleep(0.3)
            time.sleep(self.rng.uniform(0, 0.02))
        self.idle.set()

    def new_id(self):
        with self.ids["lock"]:
            self.ids["next"] += 1
            return self.ids["next"] * 2 + self.n  # writers never collide on new ids

    def some_id(self):
        with self.ids["lock"]:
            return self.rng.randint(1, max(1, self.ids["next"])) * 2 + self.rng.randint(0, 1)

    def transaction(self, cur):
        rng = self.rng
        kind = rng.choices(["insert", "update", "delete", "pkshift", "transfer", "rollback",
                            "nopk", "nopk-delete-one", "mixed"],
                           weights=[30, 20, 8, 6, 12, 6, 10, 4, 6])[0]
        changed = 0
        if kind == "insert":
            rows = [rand_row(rng, self.new_id()) for _ in range(rng.randint(1, 5))]
            changed += cur.executemany(f"INSERT INTO alltypes ({COLS}) VALUES ({PLACEHOLDERS})", rows)
        elif kind == "update":
            row = rand_row(rng, 0)
            changed += cur.execute("UPDATE alltypes SET i = %s, vc = %s, dtm = %s, j = %s, bu = %s WHERE id = %s",
                                   (row[4], row[16], row[11], row[24], row[5], self.some_id()))
        elif kind == "delete":
            changed += cur.execute("DELETE FROM alltypes WHERE id = %s", (self.some_id(),))
        elif kind == "pkshift":
            # The primary key moves: the target must lose the old key and gain the new.
            changed += cur.execute("UPDATE alltypes SET id = %s, ti = ti WHERE id = %s",
                                   (self.new_id(), self.some_id()))
        elif kind == "transfer":
            a, b = rng.sample(range(ACCOUNTS), 2)
            amount = f"{rng.randint(1, 5000) / 100:.2f}"
            changed += cur.execute("UPDATE accounts SET balance = balance - %s, version = version + 1 WHERE id = %s", (amount, a))
            changed += cur.execute("UPDATE accounts SET balance = balance + %s, version = version + 1 WHERE id = %s", (amount, b))
            changed += cur.execute("INSERT INTO transfers (src, dst, amount, at) VALUES (%s, %s, %s, NOW(6))", (a, b, amount))
        elif kind == "rollback":
            cur.execute(f"INSERT INTO alltypes ({COLS}) VALUES ({PLACEHOLDERS})", rand_row(rng, self.new_id()))
            cur.execute("UPDATE accounts SET balance = balance + 1000000 WHERE id = %s", (rng.randrange(ACCOUNTS),))
            cur.execute("INSERT INTO nopk VALUES (-1, 'rolled back', -1)")
            self.con.rollback()
            return 0
        elif kind == "nopk":
            k, v = rng.randint(0, 30), rng.choice(["same", "dup", None])
            n = rng.randint(1, 3)
            changed += cur.execute("INSERT INTO nopk VALUES " + ", ".join(["(%s, %s, %s)"] * n), (k, v, 1) * n)
        elif kind == "nopk-delete-one":
            # One row of a duplicate pair: the target must delete exactly one too.
            changed += cur.execute("DELETE FROM nopk WHERE k = %s LIMIT 1", (rng.randint(0, 30),))
        else:
            changed += cur.execute(f"INSERT INTO alltypes ({COLS}) VALUES ({PLACEHOLDERS})", rand_row(rng, self.new_id()))
            changed += cur.execute("UPDATE nopk SET n = n + 1 WHERE k = %s", (rng.randint(0, 30),))
            changed += cur.execute("UPDATE accounts SET version = version + 1 WHERE id = %s", (rng.randrange(ACCOUNTS),))
        self.con.commit()
        return changed


class Workload:
    def __init__(self, seed, writers=2):
        self.gate, self.stop = threading.Event(), threading.Event()
        ids = {"lock": threading.Lock(), "next": 0}
        self.writers = [Writer(n, seed, self.gate, self.stop, ids) for n in range(writers)]
        for w in self.writers:
            w.start()

    def resume(self):
        self.gate.set()

    def pause(self):
        """Returns once no writer is inside a transaction."""
        self.gate.clear()
        for w in self.writers:
            if not w.idle.wait(120):
                raise ChaosError(f"{w.name} did not finish its transaction in 120s")

    def rows(self):
        return sum(w.rows for w in self.writers)

    def close(self):
        self.stop.set()
        self.gate.set()
        for w in self.writers:
            w.join(10)


# ---------------------------------------------------------------------------- services

class Services:
    """The service processes, started and restarted as a supervisor would."""

    def __init__(self, pipeline, out):
        self.pipeline, self.out = pipeline, out
        self.procs = {}  # instance -> Popen
        self.exits = []  # (instance, code) of processes that exited without being killed

    def start(self, instance):
        kind = instance.split("-")[0]
        logf = open(os.path.join(self.out, f"{instance}.log"), "ab")
        env = dict(os.environ, RUST_LOG=os.environ.get("OTTER_CHAOS_LOG", "info,zookeeper_client=warn,rdkafka=warn"), OTTER_CHAOS_PW="otter")
        self.procs[instance] = subprocess.Popen(
            [os.path.join(BIN, f"otter-{kind}"), "serve", "--pipeline", self.pipeline,
             "--instance", instance, "--zookeeper", ZK, "--metrics-listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL, stderr=logf, env=env)
        logf.close()

    def kill9(self, instance):
        p = self.procs[instance]
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.start(instance)

    def signal(self, instance, sig):
        self.procs[instance].send_signal(sig)

    def check(self):
        """Records and restarts processes that exited on their own."""
        for instance, p in list(self.procs.items()):
            code = p.poll()
            if code is not None:
                self.exits.append((instance, code))
                log(f"{instance} exited on its own with status {code}; restarting it")
                self.start(instance)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    def panics(self):
        found = []
        for f in os.listdir(self.out):
            if f.endswith(".log"):
                with open(os.path.join(self.out, f), errors="replace") as fh:
                    found += [f"{f}: {line.strip()}" for line in fh if "panicked" in line]
        return found


def otterctl(*args, check=True):
    out = subprocess.run([os.path.join(BIN, "otterctl"), "--zookeeper", ZK, *args],
                         capture_output=True, text=True)
    if check and out.returncode != 0:
        raise ChaosError(f"otterctl {' '.join(args)}: {out.stdout}{out.stderr}")
    return out


def status(pipeline):
    out = otterctl("-o", "json", "status", pipeline, check=False)
    try:
        data = json.loads(out.stdout)
    except ValueError:
        return {}
    return data[0] if isinstance(data, list) else data


def infra(action, part):
    script = os.path.join(REPO, "infra", f"{action}.sh")
    out = subprocess.run([script, part], capture_output=True, text=True)
    if out.returncode != 0:
        raise ChaosError(f"infra/{action}.sh {part}: {out.stderr[-2000:]}")


# ---------------------------------------------------------------------------- faults

def active_capture(pipeline, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = status(pipeline)
        if s.get("capture_active") and s.get("capture_status") == "active":
            return s["capture_active"], s.get("capture_standbys", [])
        time.sleep(0.2)
    raise ChaosError(f"no active capture for {timeout}s")


def f_kill_capture_active(ctx, rng):
    active, _ = active_capture(ctx.pipeline)
    ctx.svc.kill9(active)
    return f"kill -9 {active} (active)"


def f_kill_capture_standby(ctx, rng):
    active, standbys = active_capture(ctx.pipeline)
    victim = standbys[0] if standbys else next(i for i in ctx.svc.procs if i.startswith("capture") and i != active)
    ctx.svc.kill9(victim)
    return f"kill -9 {victim} (standby)"


def f_kill_apply_one(ctx, rng):
    victim = rng.choice(["apply-1", "apply-2"])
    ctx.svc.kill9(victim)
    return f"kill -9 {victim}"


def f_kill_apply_all(ctx, rng):
    for a in ("apply-1", "apply-2"):
        ctx.svc.procs[a].send_signal(signal.SIGKILL)
    for a in ("apply-1", "apply-2"):
        ctx.svc.procs[a].wait()
        ctx.svc.start(a)
    return "kill -9 apply-1 apply-2"


def restart(part, what):
    def fault(ctx, rng):
        down = rng.uniform(0.5, 4)
        if part == "source":
            retrying("FLUSH BINARY LOGS", lambda: query(SOURCE, "FLUSH BINARY LOGS"))
        infra("down", part)
        time.sleep(down)
        infra("up", part)
        return f"restart {what} (down {down:.1f}s)"
    return fault


def f_stop_capture_active(ctx, rng):
    active, _ = active_capture(ctx.pipeline)
    secs = ZK_SESSION_MS / 1000 + rng.uniform(1, 4)
    ctx.svc.signal(active, signal.SIGSTOP)
    time.sleep(secs)
    ctx.svc.signal(active, signal.SIGCONT)
    return f"SIGSTOP {active} (active) {secs:.1f}s"


# name -> (function, the component it touches: two faults at once never share one)
FAULTS = {
    "kill-capture-active": (f_kill_capture_active, "capture"),
    "restart-broker": (restart("broker", "broker"), "broker"),
    "restart-target": (restart("target", "target MariaDB"), "target"),
    "kill-apply-all": (f_kill_apply_all, "apply"),
    "stop-capture-active": (f_stop_capture_active, "capture"),
    "restart-zookeeper": (restart("zookeeper", "ZooKeeper"), "zookeeper"),
    "restart-source": (restart("source", "source MariaDB, binlog rotated"), "source"),
    "kill-capture-standby": (f_kill_capture_standby, "capture"),
    "kill-apply-one": (f_kill_apply_one, "apply"),
}


def plan(rounds, rng, only):
    """Every fault alone first (in FAULTS order), then random pairs or triples at once."""
    names = only or list(FAULTS)
    out = [[n] for n in names][:rounds]
    while len(out) < rounds:
        k = rng.choice([1, 2, 2, 3]) if len(names) > 1 else 1
        picked, parts = [], set()
        for n in rng.sample(names, len(names)):
            if FAULTS[n][1] not in parts and len(picked) < k:
                picked.append(n)
                parts.add(FAULTS[n][1])
        out.append(picked)
    return out


# ---------------------------------------------------------------------------- checks

def verify():
    out = subprocess.run([os.path.join(BIN, "otter-apply"), "verify",
                          "--source", f"mysql://otter:otter@127.0.0.1:{SOURCE}",
                          "--target", f"mysql://otter:otter@127.0.0.1:{TARGET}",
                          "--tables", f"{DB}\\..*"], capture_output=True, text=True)
    return out.returncode, out.stdout + out.stderr


def nopk_duplicates(port):
    return query(port, f"SELECT k, v, n, COUNT(*) FROM {DB}.nopk GROUP BY k, v, n ORDER BY k, v, n")


class Ctx:
    pass


def marker_seen(marker, secs):
    """Writes marker row `marker` on the source and waits for it on the target: the
    moment it arrived (monotonic), or None after `secs`."""
    retrying("marker insert", lambda: query(SOURCE, f"INSERT INTO {DB}.marker VALUES (%s, NOW(6))", (marker,)))
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        try:
            if query(TARGET, f"SELECT 1 FROM {DB}.marker WHERE id = %s", (marker,)):
                return time.monotonic()
        except pymysql.err.OperationalError:
            pass
        time.sleep(0.1)
    return None


def run_round(ctx, r, faults, rng, args):
    res = {"round": r, "faults": faults, "result": "passed", "problems": []}
    ctx.work.resume()
    time.sleep(rng.uniform(1.5, 4))
    # Several faults hit at once: each in its own thread, started together.
    descr, errors = {}, []

    def hit(name):
        try:
            descr[name] = FAULTS[name][0](ctx, rng)
        except Exception as e:  # noqa: BLE001 - reported as the round's problem
            errors.append(f"{name}: {e}")
    threads = [threading.Thread(target=hit, args=(n,)) for n in faults]
    t_fault = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_back = time.monotonic()
    res["fault"] = " + ".join(descr.get(n, n) for n in faults)
    res["problems"] += errors
    # Recovery: a marker written now, on the target when the pipeline moves again.
    seen = marker_seen(r, args.recovery_secs)
    res["fault_secs"] = round(t_back - t_fault, 1)
    if seen is None:
        res["recovery_secs"] = None
        res["problems"].append(f"marker {r} not on the target {args.recovery_secs}s after the fault")
    else:
        res["recovery_secs"] = round(seen - t_back, 2)
    time.sleep(rng.uniform(0.5, 2))
    ctx.work.pause()
    res["rows"] = ctx.work.rows() - ctx.rows_before
    ctx.rows_before = ctx.work.rows()
    # Catch-up: until verify finds the target equal (or the time is up).
    t_quiet = time.monotonic()
    while True:
        code, text = verify()
        if code == 0:
            res["catch_up_secs"] = round(time.monotonic() - t_quiet, 1)
            break
        if time.monotonic() - t_quiet > args.catch_up_secs:
            res["catch_up_secs"] = None
            res["problems"].append(f"target not equal to the source after {args.catch_up_secs}s "
                                   f"(verify exit {code}):\n{text[-3000:]}")
            break
        time.sleep(1)
    src, tgt = nopk_duplicates(SOURCE), nopk_duplicates(TARGET)
    if src != tgt:
        diff = sorted(set(src) ^ set(tgt), key=repr)[:10]
        res["problems"].append(f"nopk duplicate counts differ (source vs target), e.g. {diff}")
    before = len(ctx.svc.exits)
    ctx.svc.check()
    for instance, code in ctx.svc.exits[before:]:
        res["problems"].append(f"{instance} exited on its own (status {code}); see {instance}.log")
    panics = ctx.svc.panics()
    if panics:
        res["problems"].append("panics: " + "; ".join(panics[:5]))
    if res["problems"]:
        res["result"] = "FAILED"
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    ap.add_argument("--only", default="", help="comma-separated fault names: " + ", ".join(FAULTS))
    ap.add_argument("--recovery-secs", type=float, default=60)
    ap.add_argument("--catch-up-secs", type=float, default=90)
    ap.add_argument("--max-secs", type=float, default=15 * 60, help="stop starting rounds after this")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    only = [n for n in args.only.split(",") if n]
    for n in only:
        if n not in FAULTS:
            ap.error(f"unknown fault {n} (known: {', '.join(FAULTS)})")
    rng = random.Random(seed)
    stamp = datetime.datetime.now().strftime("%m%d%H%M%S")
    out = os.path.join(REPO, "loadtest", "out", f"chaos-{stamp}")
    os.makedirs(out, exist_ok=True)
    rounds = plan(args.rounds, rng, only)
    log(f"chaos: seed {seed}, {len(rounds)} rounds, logs in {out}")

    pipeline = f"chaos_{stamp}"
    ctx = Ctx()
    ctx.pipeline = pipeline
    create_schema()
    spec = os.path.join(out, "pipeline.toml")
    with open(spec, "w") as f:
        f.write(f"""name = "{pipeline}"
description = "loadtest/chaos.py seed {seed}"
[source]
url = "mysql://otter@127.0.0.1:{SOURCE}"
password_env = "OTTER_CHAOS_PW"
server_id = 4242
[target]
url = "mysql://otter@127.0.0.1:{TARGET}"
password_env = "OTTER_CHAOS_PW"
[kafka]
brokers = "{BROKERS}"
topic_prefix = "{pipeline}"
[tables]
include = ['{DB}\\..*']
[capture.kafka]
partitions = 4
""")
    os.environ["OTTER_CHAOS_PW"] = "otter"
    otterctl("pipeline", "create", "-f", spec)
    ctx.svc = Services(pipeline, out)
    for i in ("capture-1", "capture-2", "apply-1", "apply-2"):
        ctx.svc.start(i)
    active_capture(pipeline, 60)
    ctx.work = Workload(seed)
    results = []
    try:
        # Warm-up, not a round: every table's topic exists and is assigned before round
        # 1, so round 1's recovery time measures the fault, not the discovery of a new
        # topic by the apply group (pattern subscriptions see it on a metadata refresh).
        ctx.work.resume()
        t_warm = time.monotonic()
        seen = marker_seen(0, 60)
        if seen is None:
            raise SystemExit("chaos: warm-up marker not on the target within 60s; see the service logs")
        warm = seen - t_warm
        ctx.work.pause()
        ctx.rows_before = ctx.work.rows()
        log(f"warm-up: marker 0 on the target after {warm:.1f}s, {ctx.rows_before} rows")
        for r, faults in enumerate(rounds, 1):
            if time.monotonic() - T0 > args.max_secs:
                log(f"--max-secs {args.max_secs:.0f} reached: {len(rounds) - r + 1} rounds not run")
                break
            log(f"round {r}: {' + '.join(faults)}")
            res = run_round(ctx, r, faults, rng, args)
            results.append(res)
            log(f"round {r}: {res['result']} ({res['fault']}; recovery {res['recovery_secs']}s, "
                f"catch-up {res['catch_up_secs']}s, {res['rows']} rows)")
            for p in res["problems"]:
                log(f"  problem: {p}")
    finally:
        ctx.work.close()
        ctx.svc.stop()
        otterctl("pipeline", "stop", pipeline, check=False)
        otterctl("pipeline", "delete", pipeline, check=False)

    passed = sum(1 for r in results if r["result"] == "passed")
    failed = len(results) - passed
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"seed": seed, "rounds": results, "writer_errors": sum(w.errors for w in ctx.work.writers),
                   "secs": round(time.monotonic() - T0, 1)}, f, indent=1)
    print(f"\nchaos run seed {seed} ({round(time.monotonic() - T0)} s; logs and results.json in {out})")
    print(f"{'round':>5}  {'fault':<58} {'recovery':>9} {'catch-up':>9} {'rows':>7}  result")
    for r in results:
        rec = "-" if r["recovery_secs"] is None else f"{r['recovery_secs']:.2f}s"
        cu = "-" if r["catch_up_secs"] is None else f"{r['catch_up_secs']:.1f}s"
        print(f"{r['round']:>5}  {r['fault'][:58]:<58} {rec:>9} {cu:>9} {r['rows']:>7}  {r['result']}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 and results else 1)


if __name__ == "__main__":
    try:
        main()
    except ChaosError as e:
        log(f"chaos: {e}")
        sys.exit(2)
