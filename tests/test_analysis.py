"""The study's analyses on hand-made runs with known answers: tables, speed-ups, reset statistics
and the generated table formats (the claims: tests/test_claims.py)."""

import numpy as np
import pytest

from resetrl.analysis.report import csv_table, latex_table, markdown_table, study_wall_time, table_rows
from resetrl.analysis.summaries import (
    Run,
    clean_vs_erroneous,
    final_table,
    localization,
    reset_positions,
    speedups,
    suffix_correction,
)


def history(vals: list[float], tokens_per_step: float = 100.0) -> list[dict]:
    """Validation accuracy every 10 steps."""
    return [{"step": 10 * i, "eval/val/pass1": v, "compute/tokens_generated": 10 * i * tokens_per_step}
            for i, v in enumerate(vals)]


def evaluation(greedy: float) -> dict:
    return {split: {"greedy_pass1": greedy, "pass@1": greedy / 2, "response_tokens": 30.0, "problems": 10}
            for split in ("test", "ood")}


def reset(step: int, e: int, oracle: int, n: int, rewards: list[float]) -> dict:
    return {"step": step, "n_thoughts": n, "reset_step": e, "oracle_step": oracle, "deviation": e - oracle,
            "clean_prefix": e <= oracle, "suffix_rewards": rewards}


def test_real_data_tables_add_benchmark_columns_and_dash_empty_splits():
    def real(greedy: float, with_benchmarks: bool) -> dict:
        test = {"greedy_pass1": greedy, "pass@1": greedy, "problems": 4}
        ood = {"greedy_pass1": greedy / 2, "pass@1": greedy / 2, "problems": 6, "by_source": {
            "eval/math_l5": {"greedy_pass1": greedy / 4, "problems": 3},
            "eval/hmmt": {"greedy_pass1": greedy, "problems": 3}}} if with_benchmarks else {"problems": 0}
        return {"test": test, "ood": ood}

    runs = {"grpo": [Run("grpo", s, history([0.5]), [], real(g, True)) for s, g in ((0, 0.4), (1, 0.8))]}
    table = final_table(runs, [real(0.2, True)])
    assert table["grpo"]["math_l5"]["greedy_pass1"]["mean"] == pytest.approx(0.15)
    header, rows = table_rows({"methods": ["grpo"], "table": table})
    assert header[-3:] == ["hmmt greedy_pass1", "math_l5 greedy_pass1", "generated tokens / run"]
    assert rows[0][header.index("hmmt greedy_pass1")] == "0.600 ± 0.283" and rows[1][0] == "sft"
    no_benchmarks = {"grpo": [Run("grpo", 0, history([0.5]), [], real(0.4, False))]}
    header, rows = table_rows({"methods": ["grpo"], "table": final_table(no_benchmarks, [])})
    assert header == ["method", "test greedy_pass1", "test pass@1", "generated tokens / run"]


def test_final_table_reports_mean_and_sample_std_over_seeds():
    runs = {"grpo": [Run("grpo", s, history([0.5, 0.6]), [], evaluation(g)) for s, g in ((0, 0.6), (1, 0.8))]}
    table = final_table(runs, [])
    cell = table["grpo"]["test"]["greedy_pass1"]
    assert cell["mean"] == pytest.approx(0.7) and cell["std"] == pytest.approx(0.1414, abs=1e-4) and cell["n"] == 2
    header, rows = table_rows({"table": table, "methods": ["grpo"]})
    assert rows[0][:2] == ["grpo", "0.700 ± 0.141"]
    assert markdown_table(header, rows).splitlines()[1].count("---") == len(header)
    assert csv_table(header, rows).splitlines()[1].startswith("grpo,0.700 ± 0.141")
    assert r"0.700 $\pm$ 0.141" in latex_table(header, rows)


def test_speedups_interpolate_to_the_reference_final_accuracy():
    runs = {"grpo": [Run("grpo", 0, history([0.5, 0.6, 0.7]), [], {})],
            "srpo": [Run("srpo", 0, history([0.5, 0.7, 0.8], tokens_per_step=50.0), [], {})],
            "rrpo": [Run("rrpo", 0, history([0.5, 0.55, 0.6]), [], {})]}
    out = speedups(runs, "grpo")
    assert out["target"] == 0.7
    assert out["grpo"]["steps"] == 20 and out["srpo"]["steps"] == 10
    assert out["srpo"]["speedup_steps"] == 2.0 and out["srpo"]["speedup_tokens"] == 4.0
    assert out["rrpo"]["steps"] is None and out["rrpo"]["speedup_steps"] is None


def test_reset_statistics_count_what_the_records_say():
    records = [reset(0, 1, 2, 4, [1, 1, 0, 0]), reset(0, 3, 2, 4, [0, 0, 0, 0]), reset(9, 2, 2, 2, [1, 1, 1, 1])]
    runs = [Run("srpo", 0, [], records, {})]
    positions = reset_positions(runs, bins=4)
    assert positions["hist"] == [1, 0, 1, 1] and positions["fractions_mean"] == pytest.approx((0.25 + 0.75 + 1) / 3)
    buckets = suffix_correction(runs)
    assert buckets["-1"]["rate"] == 0.5 and buckets["+1"]["rate"] == 0.0 and buckets["0"]["rate"] == 1.0
    assert buckets["-1"]["ci"][0] < 0.5 < buckets["-1"]["ci"][1]
    split = clean_vs_erroneous(runs)
    assert split["clean"]["group_pass"]["successes"] == 2 and split["erroneous"]["group_pass"]["successes"] == 0
    edges = localization(runs)
    assert edges["start"]["n"] == 2 and edges["end"]["n"] == 1 and edges["end"]["exact_rate"] == 1.0


def test_wall_time_is_measured_by_a_full_run_and_kept_through_partial_reruns(tmp_path):
    import os

    (tmp_path / "logs").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "eval" / "grpo").mkdir(parents=True)
    (tmp_path / "eval" / "sft").mkdir()
    (tmp_path / "eval" / "vineppo").mkdir()
    (tmp_path / "logs" / "study_started").write_text("1000\n")
    for path, mtime in ((tmp_path / "data" / "manifest.json", 1010), (tmp_path / "eval" / "grpo" / "seed0.json", 2900),
                        (tmp_path / "eval" / "sft" / "seed0.json", 1500),
                        (tmp_path / "eval" / "vineppo" / "seed0.json", 4000)):  # an opt-in arm run alongside
        path.write_text("{}")
        os.utime(path, (mtime, mtime))
    os.utime(tmp_path / "data" / "manifest.json", (900, 900))  # data older than this invocation: partial rerun
    assert study_wall_time(tmp_path, ["grpo"]) is None  # and no full run was ever measured
    os.utime(tmp_path / "data" / "manifest.json", (1010, 1010))
    assert study_wall_time(tmp_path, ["grpo"]) == 1900  # start stamp to the newest evaluation
    (tmp_path / "logs" / "study_started").write_text("2950\n")  # a later invocation that reran only some jobs
    assert study_wall_time(tmp_path, ["grpo"]) == 1900


def test_speedup_text_tells_never_from_at_the_start():
    from resetrl.analysis.report import speedup_text

    assert speedup_text(None, None) == "never"
    assert speedup_text(0.0, None) == "at start"  # at the target from step 0: no ratio
    assert speedup_text(20.0, 1.5) == "x1.50"


def test_each_arm_keeps_one_colour_in_every_figure():
    from resetrl.analysis.curves import ARM_COLORS, arm_color

    assert arm_color("grpo") == ARM_COLORS["grpo"] and arm_color("srpo") != arm_color("rrpo")
    # an arm outside the fixed palette: the same colour on every call and in every process
    assert arm_color("srpo_2x4") == arm_color("srpo_2x4") == arm_color("".join(["srpo", "_2x4"]))
    assert arm_color("srpo_2x4") not in ARM_COLORS.values()


# Machado et al. (2009) colour-vision-deficiency matrices at full severity, applied to linear RGB.
CVD = {"protanopia": [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                      [-0.003882, -0.048116, 1.051998]],
       "deuteranopia": [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                        [-0.011820, 0.042940, 0.968881]],
       "tritanopia": [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                      [0.004733, 0.691367, 0.303900]],
       "typical": np.eye(3).tolist()}


def _lab(hex_color: str, vision: list) -> np.ndarray:
    """CIELAB of a colour as seen with the given vision (sRGB -> linear -> simulated -> XYZ -> Lab)."""
    c = np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    linear = np.clip(np.array(vision) @ np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4), 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    t = xyz / np.array([0.95047, 1.0, 1.08883])  # relative to the D65 white
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_the_arms_colours_stay_apart_for_colour_blind_readers():
    import itertools

    from resetrl.analysis.curves import ARM_COLORS

    arms = {m: c for m, c in ARM_COLORS.items() if m != "sft"}  # sft: the dotted warm-start line, not an arm
    for name, vision in CVD.items():
        for (a, ca), (b, cb) in itertools.combinations(arms.items(), 2):
            distance = float(np.linalg.norm(_lab(ca, vision) - _lab(cb, vision)))
            assert distance > 15, f"{a} and {b} are {distance:.1f} apart (CIE76) under {name}"
    # the check can fail: orange and vermillion's cousin amber merge for a deuteranope
    assert np.linalg.norm(_lab("#E69F00", CVD["deuteranopia"]) - _lab("#D9A400", CVD["deuteranopia"])) < 15


def test_smoothing_keeps_a_flat_curve_and_spreads_a_spike():
    from resetrl.analysis.stats import smooth

    assert smooth([2.0] * 7).tolist() == [2.0] * 7
    spread = smooth([0, 0, 0, 5, 0, 0, 0])
    assert spread[3] == pytest.approx(1.0) and spread[0] == spread[6] == 0.0
    assert spread[1] == spread[5] == pytest.approx(5 / 4)  # near an end the window is shorter
