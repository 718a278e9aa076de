"""The pacing bench's arithmetic: rates over consecutive 10-second windows from the first send (the last,
partial window left out), the largest deviation from the configured rate, and its rendering."""

from __future__ import annotations


def test_windows_count_full_windows_from_the_first_send() -> None:
    from bench.pacing import windows

    steady = [100.0 + i * 0.2 for i in range(151)]  # 5/s for 30 s: three full windows
    got = windows(steady, 5)
    assert got["windows"] == [5.0, 5.0, 5.0] and got["max_deviation"] == 0.0 and got["within"]
    slow = [100.0 + i * 0.2 for i in range(50)] + [110.0 + i * 0.25 for i in range(41)]  # 5/s, then 4/s
    got = windows(slow, 5)
    assert got["windows"] == [5.0, 4.0] and got["max_deviation"] == 0.2 and not got["within"]
    assert windows([], 5)["within"] is False


def test_the_pacing_section_renders() -> None:
    from bench import render

    figure = {
        "method": "m",
        "recipients": 100,
        "configured_rate": 5,
        "full_windows": 2,
        "windows": [5.0, 4.9],
        "min_rate": 4.9,
        "max_rate": 5.0,
        "max_deviation": 0.02,
        "overall_rate": 4.95,
        "sent": 100,
        "duplicates": 0,
        "lost": 0,
        "final_status": "completed",
        "run_seconds": 21.0,
        "invocations": 30,
        "records": 110,
        "records_retried": 3,
        "invocation_errors": 0,
        "counts": {"sent": 100},
        "counters_equal_recount": True,
        "seed_seconds": 1.0,
        "submit_seconds": 0.1,
        "tolerance": 0.05,
        "met": True,
    }
    text = render.markdown({"campaign_pacing": figure, "machine": {}, "git": {}})
    assert "Campaign pacing accuracy" in text and "2.0%" in text and "4.9 / 5.0" in text
    assert "4.9" in render.headline("campaign_pacing", figure)
