"""scripts/serve_policy.py (s2robot.commands.serve_policy): a wrong address or checkpoint is one
line and exit 2, and no crash ever prints the token. Run in process: Hydra's main reads sys.argv."""

import logging
import sys

import pytest

import s2robot.serving
from s2robot.commands.serve_policy import main

TOKEN = "tok-7f3a9c1e5b"


@pytest.fixture
def run_main(monkeypatch, capsys, tmp_path):
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def run(*overrides):
        monkeypatch.setattr(sys, "argv", ["serve_policy", *overrides, f"hydra.run.dir={tmp_path}"])
        try:
            with pytest.raises(SystemExit) as e:
                main()
        finally:  # Hydra replaced the root handlers with its own (one holds the log file open)
            for h in root.handlers:
                if h not in saved[0]:
                    h.close()
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
        out, err = capsys.readouterr()
        logs = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
        return e.value.code, out, err, logs

    return run


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["host=0.0.0.0", "token=null"], "error: refusing to serve on 0.0.0.0"),
        (["port=99999"], "error: port=99999: must be in [0, 65535]"),
        (["port=abc"], "error: port=abc: "),
        ([f"token={TOKEN}", "host=203.0.113.7", "port=0"], "error: cannot listen on 203.0.113.7:0:"),
        (["checkpoint=/nonexistent/run", "port=0"], "error: no checkpoint at /nonexistent/run"),
        (["dtype=fp16"], "error: dtype=fp16: must be one of auto, fp32, bf16"),
        (["max_batch=0"], "error: max_batch=0: must be in [1, 256]"),
        (["batch_window_ms=50"], "error: batch_window_ms=50.0: must be in [0, 20]"),
        pytest.param(
            ["checkpoint=/x", "device=cuda", "port=0"],
            "error: device=cuda but CUDA is not available here",
            marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(run_main, overrides, message):
    code, out, err, _ = run_main(*overrides)
    assert code == 2 and err.count("\n") == 1 and err.startswith(message), err
    assert "Traceback" not in out + err and TOKEN not in out + err


def test_a_crash_never_prints_the_token(run_main, monkeypatch):
    def crash(host, token):
        raise RuntimeError(f"unexpected failure near {token}")

    monkeypatch.setattr(s2robot.serving, "check_bind", crash)
    code, out, err, logs = run_main("checkpoint=/x", f"token={TOKEN}", "host=0.0.0.0")
    assert code == 1
    assert TOKEN not in out + err + logs  # Hydra's "Error executing job with overrides: [...]" printed it
    assert "Error executing job" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert line.startswith("error: serve_policy crashed: RuntimeError: unexpected failure near <token>")
    assert "Traceback" in logs and "<token>" in logs  # the traceback is kept, redacted, in the run's log
