"""``python -m conformance fuzz``: HypoFuzz's workers on the conformance tests, for a bounded time.

    python -m conformance fuzz [-n PROCESSES] [--minutes M] -- conformance --backend=torch-cpu [pytest args]

HypoFuzz (``pip install hypofuzz==25.11.1``, the ``fuzz`` extra) fuzzes Hypothesis tests adaptively and
keeps what it finds in the Hypothesis example database of the tests' settings
profile; ``--hypothesis-profile=campaign`` (``conformance/profiles.py``) puts
that database in ``$CONFORMANCE_DATABASE``, a directory several machines can
share.  A failure is stored under the key plain Hypothesis replays, so
``pytest conformance --backend=... --hypothesis-profile=campaign`` with the same
directory replays every finding first.

Why not ``hypothesis fuzz`` itself: its hub (hypofuzz 25.11) exits when no
worker has reported after its first 60 s, and a worker reports only after 100
examples of its first test, which for the conformance tests (an exact interval
reference per example) takes longer than that on a loaded machine.  This
launcher runs the same ``FuzzWorker`` with a fixed assignment of tests (test
``i`` to process ``i mod n``), stops after ``--minutes`` (or when no test is
left unfailed), and prints what the database holds per test: inputs run,
behaviours seen, failing examples.  ``_worker`` also works around two
mismatches of HypoFuzz 25.11.1 with Hypothesis 6.170, and the tests take the
``req`` fixture instead of ``request`` for HypoFuzz (``conformance/plugin.py``).
Measured campaigns: ``docs/measured/hypofuzz.md``.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

GRACE_S = 60.0  # how long a worker may take to finish its batch once time is up

def _require_hypofuzz():
    try:
        import hypofuzz  # noqa: F401
    except ImportError:
        raise SystemExit("python -m conformance fuzz needs HypoFuzz: pip install hypofuzz==25.11.1") from None


def _worker(pytest_args: list, nodeids: list, stop) -> None:
    from hypofuzz import detection
    from hypofuzz.hypofuzz import FuzzWorker

    class Worker(FuzzWorker):
        def _update_targets(self, nodeids):  # called between batches of inputs
            super()._update_targets(nodeids)
            if stop.is_set() or (self.targets and not self.valid_targets):  # time is up, or every test failed
                for target in self.targets.values():  # HypoFuzz writes in a background thread; a fetch waits for it
                    list(target.database.fetch(b"conformance.fuzz: flush"))
                raise SystemExit(0)

    detection._in_hypofuzz_run = True
    if sys.version_info < (3, 12):
        # Before 3.12 both Hypothesis's observability coverage and HypoFuzz's use sys.settrace, and Hypothesis's,
        # set inside the test, replaces HypoFuzz's: HypoFuzz would see no branch at all (measured: 0 behaviours).
        # Hypothesis documents this switch as one to monkeypatch.
        from hypothesis.internal import observability
        observability.OBSERVABILITY_COLLECT_COVERAGE = False
    from hypothesis.internal.conjecture.data import ConjectureResult
    if not hasattr(ConjectureResult, "slice_comments"):
        # HypoFuzz 25.11.1 copies the shrunk example's explain-phase comments from this attribute, which newer
        # Hypothesis (6.170) no longer has: without it the worker dies on its first finding, before storing it
        # shrunk.  No comments is what an example without explanations has.
        ConjectureResult.slice_comments = property(lambda self: {})
    state = {"hub_state": {"nodeids": list(nodeids)},
             "worker_state": {"nodeids": {}, "current_lifetime": 0.0, "expected_lifetime": 0.0,
                              "valid_nodeids": []}}
    Worker(pytest_args=pytest_args, shared_state=state).start()


def collect(pytest_args: list):
    """HypoFuzz's collection: the Hypothesis tests ``pytest --collect-only PYTEST_ARGS`` finds."""
    from hypofuzz import detection
    from hypofuzz.collection import collect_tests

    detection._in_hypofuzz_run = True
    return collect_tests(pytest_args).fuzz_targets


def summary(targets) -> list[dict]:
    """Per test: inputs run (summed over the workers' latest reports), behaviours, failures stored."""
    from hypofuzz.database import FailureState, HypofuzzDatabase
    from hypothesis import settings

    db = HypofuzzDatabase(settings().database)
    rows = []
    for t in targets:
        latest = {}
        for r in db.reports.fetch(t.database_key):
            if r.worker_uuid not in latest or r.elapsed_time > latest[r.worker_uuid].elapsed_time:
                latest[r.worker_uuid] = r
        inputs = sum(sum(r.status_counts.values()) for r in latest.values())
        behaviours = max((r.behaviors for r in db.reports.fetch(t.database_key)), default=0)
        failures = (len(list(db.failures(state=FailureState.SHRUNK).fetch(t.database_key)))
                    + len(list(db.failures(state=FailureState.UNSHRUNK).fetch(t.database_key))))
        rows.append({"test": t.nodeid, "inputs": inputs, "behaviours": behaviours, "failures": failures,
                     "seconds": round(sum(r.elapsed_time for r in latest.values()), 1)})
    return rows


def main(argv: list | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ours, pytest_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(prog="python -m conformance fuzz",
                                 description="HypoFuzz workers on the conformance tests for a bounded time; "
                                             "arguments after -- go to pytest")
    ap.add_argument("-n", "--processes", type=int, default=1)
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args(ours)
    _require_hypofuzz()
    if not pytest_args:
        pytest_args = ["--pyargs", "conformance", "--backend=torch-cpu", "--hypothesis-profile=campaign"]
    targets = collect(pytest_args)
    if not targets:
        print(f"no Hypothesis tests collected with pytest args {pytest_args}", file=sys.stderr)
        return 2
    ids = [t.nodeid for t in targets]
    n = max(1, min(args.processes, len(ids)))
    print(f"fuzzing {len(ids)} tests with {n} process(es) for {args.minutes:g} min; pytest args: "
          f"{' '.join(pytest_args)}", flush=True)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(pytest_args, ids[i::n], stop), daemon=True) for i in range(n)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 60 * args.minutes
    try:
        while time.monotonic() < deadline and any(p.is_alive() for p in procs):
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
    finally:
        stop.set()  # a worker stops after its current batch of inputs, its writes flushed
        grace = time.monotonic() + GRACE_S
        for p in procs:
            p.join(max(0.0, grace - time.monotonic()))
        for p in procs:  # still inside a batch: its last inputs' database writes may be lost
            if p.is_alive():
                p.terminate()
                p.join(10)
    rows = summary(targets)
    width = max(len(r["test"]) for r in rows)
    print(f"{'test':<{width}}  {'inputs':>7}  {'behaviours':>10}  {'failing examples':>16}")
    for r in rows:
        print(f"{r['test']:<{width}}  {r['inputs']:>7}  {r['behaviours']:>10}  {r['failures']:>16}")
    total = sum(r["inputs"] for r in rows)
    failing = [r["test"] for r in rows if r["failures"]]
    print(f"{total} inputs over {sum(1 for r in rows if r['inputs'])} of {len(rows)} tests; "
          f"{len(failing)} with a stored failure" + (": replay with plain pytest and the same "
                                                      "--hypothesis-profile/database" if failing else ""))
    return 1 if failing else 0
