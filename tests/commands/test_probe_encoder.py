from tests.commands import assert_one_line_error, run_cli


def test_too_few_folds_is_one_line(tmp_path):
    proc = run_cli("scripts/probe_encoder.py", "n_folds=1", cwd=tmp_path)
    assert_one_line_error(proc, "n_folds=1: must be >= 2")
    assert list(tmp_path.iterdir()) == []
