"""compare.engine.runner: experiments computed once and shared, the same numbers serial, in worker
processes and on dask, cache reuse, errors reported, kill-and-resume, no worker left behind, two
runs sharing one cache directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare.engine import runner
from compare.engine.cache import Cache

from .conftest import PLUGIN

ROOT = Path(__file__).resolve().parents[3]


def _jobs():
    return [runner.claim_job("Z1", size="fast", seed=3), runner.claim_job("Z2", size="fast", seed=3),
            runner.figure_job("zfig", size="fast", seed=3)]


def _lines(log: Path, prefix: str) -> list[str]:
    return [ln.split()[1] for ln in log.read_text().splitlines() if ln.startswith(prefix)] if log.exists() else []


def _numbers(res) -> dict:
    out = {}
    for j, v in res.results.items():
        out[j.name] = v["png"] if j.kind == "figure" else (v["measured"], v["stderr"], v["verdict"], v["rows"])
    return out


def test_each_experiment_is_computed_once_however_many_readers(fake):
    res = runner.run(_jobs(), workers=1, plugins=[PLUGIN])
    # Z1 and zfig read fake.normal, Z2 reads it and fake.shifted (which requires it): computed once
    assert sorted(_lines(fake, "normal")) == [str(i) for i in range(6)]
    assert sorted(_lines(fake, "shifted")) == [str(i) for i in range(6)]
    assert res.experiments == 2 and res.blocks_computed == 6
    assert {j.name: v.get("verdict") for j, v in res.results.items()} == {"Z1": "holds", "Z2": "holds",
                                                                          "zfig": None}
    rec = res.results[_jobs()[0]]
    assert rec["settings"] == {"trials": 6, "scale": 1.0, "draws": 50} and rec["seed"] == 3


def test_same_numbers_serial_processes_and_dask(fake):
    import distributed  # installed by make test; missing => the test fails
    from threadpoolctl import threadpool_limits

    serial = _numbers(runner.run(_jobs(), workers=1, plugins=[PLUGIN]))
    assert _numbers(runner.run(_jobs(), workers=2, plugins=[PLUGIN])) == serial
    with threadpool_limits(limits=None):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                      protocol="tcp") as lc:
            assert _numbers(runner.run(_jobs(), scheduler=lc.scheduler_address, plugins=[PLUGIN])) == serial


def test_blocks_do_not_change_the_numbers(fake, monkeypatch):
    from compare.engine import registry as R

    a = _numbers(runner.run(_jobs()[:1], workers=1, plugins=[PLUGIN]))
    spec = R.EXPERIMENTS["fake.normal"]
    from dataclasses import replace

    monkeypatch.setitem(R.EXPERIMENTS, "fake.normal", replace(spec, block=4))
    assert _numbers(runner.run(_jobs()[:1], workers=1, plugins=[PLUGIN])) == a


def test_cache_is_reused_and_errors_are_reported_not_stored(fake, tmp_path):
    cache = Cache(tmp_path / "c", version="t")
    jobs = _jobs() + [runner.claim_job("Z3", size="fast", seed=3), runner.claim_job("Z4", size="fast", seed=3)]
    first = runner.run(jobs, workers=1, plugins=[PLUGIN], cache=cache)
    z3, z4 = first.results[jobs[3]], first.results[jobs[4]]
    assert z3["verdict"] == "fails" and "deliberate failure in Z3" in z3["error"]
    assert z4["verdict"] == "fails" and "deliberate failure in fake.broken" in z4["error"]
    n = len(fake.read_text().splitlines())
    second = runner.run(jobs, workers=1, plugins=[PLUGIN], cache=cache)
    assert second.from_cache == set(jobs[:3])  # errors were not cached
    assert _numbers(second) == _numbers(first)
    assert len(fake.read_text().splitlines()) == n + 0  # nothing recomputed but the failures
    with pytest.raises(ValueError, match="argument 'workers'"):
        runner.run(jobs, workers=0)


# --------------------------------------------------------------------------- processes
def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "compare", *args, "--plugins", PLUGIN, "--quiet"]


def _env(log: Path, **extra: str) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", "CONCURRENCE_CODE_VERSION": "runner-test", "FAKE_LOG": str(log)}
    env.pop("CONCURRENCE_CACHE_DIR", None)
    env.pop("FAKE_WAIT", None)
    env.update(extra)
    return env


def _session_processes(sid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.getsid(int(p.name)) == sid:
                    out.append(int(p.name))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def _wait_for(log: Path, text: str, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while text not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None, f"exited early: {proc.stderr.read() if proc.stderr else ''}"
        assert time.monotonic() < deadline, f"never saw {text!r}"
        time.sleep(0.05)


@pytest.mark.slow  # subprocesses
def test_sigkill_leaves_no_worker_and_a_rerun_resumes_block_by_block(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ("report", "Z1", "--figures", "none", "--jobs", "2", "--cache-dir", str(cache), "--out", str(out))
    log = tmp_path / "killed.log"
    proc = subprocess.Popen(_cmd(*args), cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=_env(log, FAKE_WAIT=str(tmp_path / "never")))
    try:
        _wait_for(log, "waiting", proc)
        time.sleep(0.5)  # the other worker finishes its block and stores it
        assert len(_session_processes(proc.pid)) >= 2  # the run and its workers
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, as an OOM killer or a user would
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (left := _session_processes(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not left, f"processes left after SIGKILL: {left}"
    finally:
        for pid in _session_processes(proc.pid):
            os.kill(pid, signal.SIGKILL)
    done_before = set(_lines(log, "normal")) - {"3"}
    res = subprocess.run(_cmd(*args), cwd=ROOT, env=_env(tmp_path / "resumed.log"), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    redone = set(_lines(tmp_path / "resumed.log", "normal"))
    assert "3" in redone and not (redone & (done_before - {"2"})), (done_before, redone)
    assert json.loads((out / "results.json").read_text())["claims"][0]["verdict"] == "holds"


@pytest.mark.slow  # subprocesses
def test_two_runs_sharing_a_cache_compute_each_block_once(tmp_path):
    cache = tmp_path / "cache"
    wait = tmp_path / "go"
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    a = subprocess.Popen(_cmd("check", "Z1", "--cache-dir", str(cache)), cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env(a_log, FAKE_WAIT=str(wait)))
    try:
        _wait_for(a_log, "waiting", a)  # A holds the lock of block (2, 3)
        b = subprocess.Popen(_cmd("check", "Z1", "--cache-dir", str(cache)), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env(b_log))
        time.sleep(3)
        assert b.poll() is None, "B finished without A's block"
        wait.write_text("go")
        out_a, err_a = a.communicate(timeout=120)
        out_b, err_b = b.communicate(timeout=120)
    finally:
        for p in (a, b) if "b" in dir() else (a,):
            p.kill()
    assert a.returncode == 0 and b.returncode == 0, (err_a, err_b)
    trials = _lines(a_log, "normal") + _lines(b_log, "normal")
    assert sorted(trials) == [str(i) for i in range(6)], f"trials computed: A {_lines(a_log, 'normal')}, " \
                                                          f"B {_lines(b_log, 'normal')}"
    assert out_a.splitlines()[1].split()[:1] == out_b.splitlines()[1].split()[:1] == ["Z1"]
