"""scripts/gpu_check.sh in its reduced CPU mode: the JSON a GPU run prints has every section."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_cpu_smoke_prints_every_section(tmp_path):
    env = {**os.environ, "GPU_CHECK_OUT": str(tmp_path / "check.json"), "PYTHON": sys.executable}
    done = subprocess.run(
        [str(ROOT / "scripts/gpu_check.sh"), "--cpu-smoke", "--seconds", "0.05"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out == json.loads((tmp_path / "check.json").read_text())
    assert out["mode"] == "cpu-smoke" and out["weights"] == "random"
    s2 = out["s2_batch1"]
    for key in ("eager_fp32", "per_scale_loop_fp32", "fast"):
        assert s2[key]["p50_ms"] > 0 and s2[key]["p99_ms"] >= s2[key]["p50_ms"]
    assert s2["fast"]["dtype"] == "bf16" and 0 < s2["features_rel_err_fast_vs_fp32"] < 0.05
    assert set(out["plain_batch1"]["vit_t"]) == {"eager_fp32", "eager_bf16"}
    assert {"frames_per_s", "tflops", "matmul_peak_bf16_tflops", "share_of_peak"} <= set(out["caching_bf16_batch32"])
    server = out["server"]
    assert server["request_latency_1_client"]["p99_ms"] > 0 and server["ratio_16_clients"] > 0
    assert server["clients_16_batched"]["clients"] == 16
