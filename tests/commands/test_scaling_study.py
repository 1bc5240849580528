from tests.commands import assert_one_line_error, run_cli


def test_empty_seeds_is_one_line(tmp_path):
    proc = run_cli("scripts/scaling_study.py", "study=small", "seeds=[]", cwd=tmp_path)
    assert_one_line_error(proc, "seeds=[]")
    assert list(tmp_path.iterdir()) == []


def test_report_of_a_missing_study_is_one_line(tmp_path):
    proc = run_cli("scripts/scaling_study.py", "report_only=true", f"study_dir={tmp_path}/none", cwd=tmp_path)
    assert_one_line_error(proc, f"study_dir={tmp_path}/none does not exist")
