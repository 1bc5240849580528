from tests.commands import assert_one_line_error, run_cli


def test_bad_mask_ratio_is_one_line_and_leaves_no_run_dir(tmp_path):
    # the default run dir, runs/mae/<date>_<encoder>, under the launch directory
    proc = run_cli("scripts/pretrain_mae.py", "mae.mask_ratio=1.0", cwd=tmp_path)
    assert_one_line_error(proc, "mae.mask_ratio=1.0: must be in (0, 1)")
    assert list(tmp_path.iterdir()) == []
