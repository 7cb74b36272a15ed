"""python -m compare / concurrence: list, check, report, seeds; cache and resume, processes and dask give
the same records, --set, --plugins, bad input exits 2 before any work.

In-process tests use the cheap real claims C1-C3 (and only them: the claim set keeps growing).
Tests of the test-only claims Z1-Z5 (tests/compare/engine/fake_plugin.py) run the command in a
subprocess with ``--plugins``, so those claims never enter this process's registry.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compare.engine.cli import ENV_DIR, ENV_VERSION, main
from compare.engine.report import strip_timing

ROOT = Path(__file__).resolve().parents[2]
FAKE = str(ROOT / "tests" / "compare" / "engine" / "fake_plugin.py")
CHEAP = ["C1", "C2", "C3"]  # exact claims, ~0.1 s each at size fast


@pytest.fixture(autouse=True)
def _pinned(monkeypatch):
    # other engineers edit sources while tests run: pin the code version the cache checks
    monkeypatch.setenv(ENV_VERSION, "cli-test")
    monkeypatch.delenv(ENV_DIR, raising=False)


def _report(tmp_path, *extra, name="out"):
    return main(["report", *extra, "--figures", "none", "--quiet", "--out", str(tmp_path / name),
                 "--cache-dir", str(tmp_path / "cache")])


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def _same_numbers(a: list[dict], b: list[dict]) -> bool:
    return json.dumps(strip_timing(a), sort_keys=True) == json.dumps(strip_timing(b), sort_keys=True)


# --------------------------------------------------------------------------- list / check
def test_list_prints_one_line_per_claim(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = [ln.split()[0] for ln in lines]
    assert ids[:2] == ["C1", "C2"] and {f"C{i}" for i in range(1, 8)} <= set(ids)
    assert len(ids) == len(set(ids))


def test_check_table_json_and_exit_code(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main(["check", *CHEAP, "--quiet", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["id", "paper_ref", "kind"]
    recs = json.loads(path.read_text())
    assert [r["id"] for r in recs] == CHEAP and all(r["passed"] for r in recs)
    assert {"id", "paper_ref", "kind", "prediction", "measured", "stderr", "tolerance", "alpha", "passed",
            "seconds"} <= set(recs[0])


@pytest.mark.parametrize("argv, needle", [
    (["check", "C1", "NOPE"], "unknown claim id(s) NOPE; valid ids: C1, C2"),
    (["report", "NOPE"], "unknown claim id(s) NOPE; valid ids: C1, C2"),
    (["report", "C1", "--figures", "nofig"], "unknown figure(s) nofig; valid figures:"),
    (["check", "--plugins", "no_such_module_xyz"], "--plugins: no module named 'no_such_module_xyz'"),
    (["check", "C1", "--set", "nope=1"], "--set: unknown setting(s) nope for the selected claims and figures; "
                                          "valid settings: cases, d_x, d_y, etas"),
    (["check", "C7", "--set", "n=12.5"], "setting 'n' must be an integer; got '12.5'"),
    (["check", "C7", "--set", "noise_std=-1"], "C7Settings: argument 'noise_std'"),
    (["check", "C7", "--set", "kappa_x"], "--set must be NAME=VALUE"),
])
def test_bad_input_lists_valid_choices(argv, needle, capsys, tmp_path):
    assert main([*argv, "--quiet"] + (["--out", str(tmp_path / "o")] if argv[0] == "report" else [])) == 2
    err = capsys.readouterr().err
    assert needle in err, err


@pytest.mark.parametrize("command", ["check", "report"])
@pytest.mark.parametrize("value", ["-1", "1.5", "seven", ""])
def test_bad_seed_is_a_usage_error_before_any_work(command, value, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "C1", "--seed", value, "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert e.value.code == 2
    assert "argument --seed: must be an integer >= 0" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("json_arg, needle", [
    ("", "--json must be a file path; got an empty string"),
    ("{tmp}", "--json must be a file path, not a directory"),
    ("/proc/concurrence.json", "--json must be a file in a writable directory"),
    ("{tmp}/no/such/dir/r.json", "--json must be a file in a writable directory"),
])
def test_bad_json_path_fails_before_any_work(json_arg, needle, tmp_path, capsys):
    arg = json_arg.replace("{tmp}", str(tmp_path))
    assert main(["check", "C1", "--quiet", "--json", arg, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "cache" / "claims").exists()


@pytest.mark.parametrize("out_arg, needle", [
    ("", "--out must be a directory path; got an empty string"),
    ("/proc/concurrence-report", "--out must be a writable directory"),
    ("{tmp}/file", "--out must be a writable directory"),
])
def test_bad_out_fails_before_any_work(out_arg, needle, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    arg = out_arg.replace("{tmp}", str(tmp_path))
    assert main(["report", "C1", "--quiet", "--out", arg, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "cache" / "claims").exists()


def test_seeds_counts_verdicts_per_claim(tmp_path, capsys):
    path = tmp_path / "seeds.json"
    assert main(["seeds", "C1", "C3", "--count", "3", "--quiet", "--cache-dir", str(tmp_path / "cache"),
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["id", "kind", "seeds", "holds"]
    table = json.loads(path.read_text())
    assert [r["id"] for r in table] == ["C1", "C3"]
    assert all(r["seeds"] == 3 and r["counts"]["holds"] == 3 and r["expected_false_failures"] == 0 for r in table)
    # the runs are cached per seed: a check at seed 2 reuses them
    assert main(["check", "C1", "--seed", "2", "--quiet", "--cache-dir", str(tmp_path / "cache")]) == 0


def test_seeds_table_expected_false_failures_and_exit_rule():
    from compare.engine.cli import seeds_table

    rec = lambda v, s: {"verdict": v, "seed": s, "alpha": 1e-3, "alpha_bounds": "false failure",  # noqa: E731
                        "kind": "statistical"}
    one = seeds_table({"X": [rec("fails", 0)] + [rec("holds", s) for s in range(1, 20)]})[0]
    assert one["expected_false_failures"] == pytest.approx(0.02) and one["p_fails"] > 1e-3  # one failure: plausible
    many = seeds_table({"X": [rec("fails", s) for s in range(3)] + [rec("holds", s) for s in range(3, 20)]})[0]
    assert many["p_fails"] < 1e-3 and many["seeds_by_verdict"]["fails"] == [0, 1, 2]


def test_seeds_needs_a_positive_count(capsys):
    with pytest.raises(SystemExit) as e:
        main(["seeds", "C1", "--count", "0"])
    assert e.value.code == 2 and "argument --count: must be an integer >= 1" in capsys.readouterr().err


def test_jobs_0_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["check", "C1", "--jobs", "0"])
    assert e.value.code == 2 and "argument --jobs: must be a nonzero integer" in capsys.readouterr().err


def test_set_round_trip_into_the_record(tmp_path):
    path = tmp_path / "r.json"
    assert main(["check", "C3", "--quiet", "--no-cache", "--set", "starts=2", "--set", "etas=0.3,0.6",
                 "--json", str(path)]) == 0
    rec = json.loads(path.read_text())[0]
    assert rec["settings"]["starts"] == 2 and rec["settings"]["etas"] == [0.3, 0.6]
    assert sorted({r["eta"] for r in rec["rows"]}) == [0.3, 0.6] and len({r["start"] for r in rec["rows"]}) == 2


def test_unknown_size_lists_valid_sizes(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", "--size", "huge"])
    assert e.value.code == 2
    assert "'fast', 'paper'" in capsys.readouterr().err


def test_unwritable_out_fails_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["report", "C1", "--quiet", "--out", str(tmp_path / "file" / "sub"),
                 "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "--out must be a writable directory" in err and "file/sub" in err, err
    assert not (tmp_path / "cache" / "claims").exists()


@pytest.mark.slow  # a subprocess or worker start-up of several seconds
def test_unreachable_scheduler_fails_within_10_seconds(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    assert main(["check", "C1", "--quiet", "--scheduler", f"tcp://127.0.0.1:{port}"]) == 2
    took = time.monotonic() - t0
    err = capsys.readouterr().err
    assert took < 10, f"took {took:.1f} s"
    assert f"could not reach the dask scheduler at 'tcp://127.0.0.1:{port}'" in err, err


@pytest.mark.slow  # a subprocess start-up
def test_malformed_scheduler_address_exits_quickly(tmp_path):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "compare", "check", "C1", "--quiet", "--scheduler", "not an address"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 2 and "could not reach the dask scheduler at 'not an address'" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert took < 10, f"the process took {took:.1f} s to exit"


# --------------------------------------------------------------------------- report and cache
def test_report_writes_page_json_and_reuses_cache(tmp_path, capsys):
    assert _report(tmp_path, *CHEAP) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("report: 3 claim(s): 3 holds, 0 fails, 0 inconclusive, 0 contradicted; wrote "), line
    out = tmp_path / "out"
    first = _results(out)
    assert (out / "index.html").is_file() and [r["id"] for r in first["claims"]] == CHEAP
    assert first["provenance"]["tasks_computed"] == 3
    assert _report(tmp_path, *CHEAP) == 0
    second = _results(out)
    assert second["provenance"]["tasks_from_cache"] == 3 and second["provenance"]["tasks_computed"] == 0
    assert second["claims"] == first["claims"]  # seconds too: the cached record is reused whole
    assert "&#8635;" in (out / "index.html").read_text()  # marked as reused


def test_cache_of_another_code_version_is_recomputed_with_a_notice(tmp_path, monkeypatch, capsys):
    assert _report(tmp_path, "C1", "C3") == 0
    first = _results(tmp_path / "out")
    capsys.readouterr()
    monkeypatch.setenv(ENV_VERSION, "cli-test-2")
    assert _report(tmp_path, "C1", "C3") == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "written by code version cli-test" in err[0] and "recomputed" in err[0], err
    second = _results(tmp_path / "out")
    assert second["provenance"]["tasks_computed"] == 2
    assert _same_numbers(first["claims"], second["claims"])


def test_malformed_cache_file_is_recomputed(tmp_path, capsys):
    assert _report(tmp_path, "C1", "C3") == 0
    first = _results(tmp_path / "out")
    files = sorted((tmp_path / "cache" / "claims").glob("*.npz"))
    assert len(files) == 2
    files[0].write_bytes(files[0].read_bytes()[:40])  # truncated
    files[1].write_text("not a cache file")
    capsys.readouterr()
    assert _report(tmp_path, "C1", "C3") == 0
    err = capsys.readouterr().err
    assert err.count("is not a valid entry") == 2, err
    second = _results(tmp_path / "out")
    assert second["provenance"]["tasks_computed"] == 2
    assert _same_numbers(first["claims"], second["claims"])


def test_no_cache_writes_nothing(tmp_path):
    assert main(["report", "C1", "--figures", "none", "--quiet", "--no-cache", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- parallel and dask
@pytest.mark.slow  # a subprocess or worker start-up of several seconds
def test_check_jobs_2_gives_identical_records(tmp_path):
    serial, par = tmp_path / "s.json", tmp_path / "p.json"
    assert main(["check", *CHEAP, "--quiet", "--json", str(serial)]) == 0
    assert main(["check", *CHEAP, "--quiet", "--jobs", "2", "--json", str(par)]) == 0
    assert _same_numbers(json.loads(serial.read_text()), json.loads(par.read_text()))


def test_dask_local_cluster_gives_identical_records(tmp_path):
    import distributed  # installed by make test (extra concurrence[distributed]); missing => the test fails
    from threadpoolctl import threadpool_limits

    serial, dask = tmp_path / "s.json", tmp_path / "d.json"
    assert main(["check", *CHEAP, "--quiet", "--json", str(serial)]) == 0
    with threadpool_limits(limits=None):  # in-process workers pin BLAS threads; restore afterwards
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None, protocol="tcp") as lc:
            assert len(lc.workers) == 2
            assert main(["check", *CHEAP, "--quiet", "--scheduler", lc.scheduler_address, "--json", str(dask)]) == 0
            assert main(["report", *CHEAP, "--figures", "none", "--quiet", "--scheduler", lc.scheduler_address,
                         "--out", str(tmp_path / "out"), "--no-cache"]) == 0
    assert _same_numbers(json.loads(serial.read_text()), json.loads(dask.read_text()))
    assert _same_numbers(json.loads(serial.read_text()), _results(tmp_path / "out")["claims"])
    assert _results(tmp_path / "out")["provenance"]["scheduler"] == lc.scheduler_address


# --------------------------------------------------------------------------- subprocess: kill and resume
def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "compare", *args, "--plugins", FAKE, "--quiet"]


def _env(tmp_path: Path, log: str, **extra: str) -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg", ENV_VERSION: "cli-test", "FAKE_LOG": str(tmp_path / log)}
    env.pop(ENV_DIR, None)
    env.pop("FAKE_WAIT", None)
    env.update(extra)
    return env


def _log(tmp_path: Path, name: str) -> list[str]:
    p = tmp_path / name
    return p.read_text().splitlines() if p.exists() else []


@pytest.mark.slow  # a subprocess or worker start-up of several seconds
def test_report_exit_codes_errors_and_figures(tmp_path):
    out = tmp_path / "out"
    base = ("--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    # contradicted only: exit 0; a raising claim or experiment: exit 1, reported, not cached
    r = subprocess.run(_cmd("report", "Z3", "Z4", "Z5", *base), cwd=ROOT, env=_env(tmp_path, "a.log"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "3 claim(s): 0 holds, 2 fails, 0 inconclusive, 1 contradicted" in r.stdout
    assert "Z3: error: RuntimeError: deliberate failure in Z3" in r.stderr
    assert "Z4: error: experiment 'fake.broken' failed: ZeroDivisionError" in r.stderr
    res = _results(out)
    assert [c["verdict"] for c in res["claims"]] == ["fails", "fails", "contradicted"]
    assert res["figures"] == []  # none of Z3-Z5 backs a figure
    r = subprocess.run(_cmd("report", "Z5", *base), cwd=ROOT, env=_env(tmp_path, "c.log"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "0 holds, 0 fails, 0 inconclusive, 1 contradicted" in r.stdout
    assert _log(tmp_path, "c.log") == []  # Z5 came from the cache
    # --strict: a contradicted paper statement is a non-zero exit too (check and report)
    r = subprocess.run(_cmd("report", "Z5", "--strict", *base), cwd=ROOT, env=_env(tmp_path, "c2.log"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    r = subprocess.run(_cmd("check", "Z5", "--cache-dir", str(tmp_path / "cache")), cwd=ROOT,
                       env=_env(tmp_path, "c3.log"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run(_cmd("check", "Z5", "--strict", "--cache-dir", str(tmp_path / "cache")), cwd=ROOT,
                       env=_env(tmp_path, "c4.log"), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    # figures backing the selected claims come along: zfig backs Z1
    r = subprocess.run(_cmd("report", "Z1", *base), cwd=ROOT, env=_env(tmp_path, "d.log"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = _results(out)
    assert [f["name"] for f in res["figures"]] == ["zfig"] and res["figures"][0]["claims"] == ["Z1"]
    assert res["figures"][0]["caption"] == "Trial means of 50 normal draws, 6 trials."  # from the settings run
    assert (out / "figures" / "zfig.png").is_file() and (out / "figures" / "zfig.svg").is_file()
    html = (out / "index.html").read_text()
    assert 'id="fig-zfig"' in html and "data:image/png;base64," in html


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("plugin, needle", [
    ("raise RuntimeError('broken plugin')\n", "raised while importing: RuntimeError: broken plugin"),
    ("from simulate.optimizers import register\nclass Half:\n    def init(self, F, G):\n        return None\n"
     "register('half', lambda **o: Half())\n", "'step'"),
    ("import no_such_dependency_xyz\n", "raised while importing: ModuleNotFoundError"),
])
def test_bad_plugins_exit_2_before_any_work(tmp_path, plugin, needle):
    mod = tmp_path / "plug.py"
    mod.write_text(plugin)
    r = subprocess.run([sys.executable, "-m", "compare", "check", "C1", "--plugins", str(mod), "--quiet",
                        "--cache-dir", str(tmp_path / "cache")], cwd=ROOT, env=_env(tmp_path, "p.log"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--plugins" in r.stderr and needle in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "cache" / "claims").exists()


@pytest.mark.slow  # a subprocess
def test_console_script_runs_the_same_program(tmp_path):
    exe = Path(sys.executable).with_name("concurrence")
    r = subprocess.run([str(exe), "list"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("C1 "), r.stderr


def test_report_section_claims_come_with_their_flag(tmp_path, monkeypatch):
    """A plain report checks the paper's claims C1-C21; the scorecard's own claims C22-C25 come with
    --scorecard (make report passes it) or when named; the claims chosen are those handed to the runner."""
    from compare.engine import cli

    class Stop(Exception):
        pass

    seen: list = []

    def capture(args, ids, figs, seeds):
        seen.append(list(ids))
        raise Stop

    monkeypatch.setattr(cli, "build_jobs", capture)
    scorecard = {"C22", "C23", "C24", "C25"}
    for extra, name in (([], "plain"), (["--scorecard"], "with"), (["C24", "C1"], "named")):
        with pytest.raises(Stop):
            main(["report", *extra, "--quiet", "--out", str(tmp_path / name)])
    plain, with_flag, named = seen
    assert "C21" in plain and not scorecard & set(plain), plain
    assert scorecard <= set(with_flag) and set(plain) <= set(with_flag), with_flag
    assert named == ["C24", "C1"]
