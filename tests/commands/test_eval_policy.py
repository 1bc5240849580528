from tests.commands import assert_one_line_error, run_cli


def test_misspelt_env_override_is_one_line(tmp_path):
    proc = run_cli("scripts/eval_policy.py", "checkpoint=runs/x", "+env.horizn=200", cwd=tmp_path)
    assert_one_line_error(proc, "env.horizn=200: not an env key (did you mean horizon?)")
    assert list(tmp_path.iterdir()) == []


def test_missing_checkpoint_is_one_line(tmp_path):
    proc = run_cli("scripts/eval_policy.py", cwd=tmp_path)
    assert_one_line_error(proc, "checkpoint= is required")
