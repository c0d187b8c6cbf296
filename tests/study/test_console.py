"""The study console: which Tune events print a line, and the status table (no Ray needed)."""

from __future__ import annotations

from ray.tune.experiment import Trial

from fdsl_ray.study.console import StudyConsole, error_line, status_table
from fdsl_ray.study.spec import StudySpec

SPEC = StudySpec(name="c", generator={"name": "onepfrac", "image_size": 16, "num_categories": 4,
                                      "images_per_category": 2},
                 space={"delta": {"type": "categorical", "choices": [0.01, 0.1]}},
                 sampler="grid", num_samples=2,
                 pretrain={"model": "cpu_micro", "epochs": 12, "warmup_epochs": 0})


def trial(trial_id: str, delta: float, status: str, result: dict | None = None) -> Trial:
    made = Trial("run_trial", config={"delta": delta}, trial_id=trial_id, stub=True)
    made.set_status(status)
    if result:
        made.update_last_result(result)
    return made


def test_one_line_per_event_and_every_few_epochs(capsys):
    console = StudyConsole(SPEC, interval=3600)
    running = trial("t0000001", 0.1, "RUNNING")
    console.on_trial_start(0, [running], running)
    for epoch in range(1, 13):
        console.on_trial_result(0, [running], running, {"epoch": epoch, "loss": 4.0 / epoch})
    running.update_last_result({"top1": 61.25, "epoch": 12, "pretrain_loss": 0.33})
    console.on_trial_result(0, [running], running, running.last_result)
    console.on_trial_complete(0, [running], running)
    console.on_step_end(0, [running])  # within the interval: no table
    assert capsys.readouterr().out.splitlines() == [
        "trial t0000001 started: delta=0.1",
        "trial t0000001 epoch 3/12: loss 1.3333",
        "trial t0000001 epoch 6/12: loss 0.6667",
        "trial t0000001 epoch 9/12: loss 0.4444",
        "trial t0000001 epoch 12/12: loss 0.3333",
        "trial t0000001 finished: top1 61.25",
    ]


def test_the_status_table_comes_at_its_interval_while_trials_run(capsys):
    trials = [trial("t0000001", 0.1, "RUNNING", {"epoch": 3, "loss": 1.234}),
              trial("t0000002", 0.01, "TERMINATED", {"epoch": 4, "pretrain_loss": 1.1,
                                                      "top1": 55.5})]
    StudyConsole(SPEC, interval=0).on_step_end(0, trials)
    assert capsys.readouterr().out == status_table(trials) + "\n"
    assert [line.split() for line in status_table(trials).splitlines()] == [
        ["trials:", "1", "RUNNING,", "1", "TERMINATED"],
        ["trial", "status", "delta", "epoch", "loss", "top1"],
        ["t0000001", "RUNNING", "0.1", "3", "1.234", "NaN"],
        ["t0000002", "TERMINATED", "0.01", "4", "1.1", "55.5"]]
    StudyConsole(SPEC, interval=0).on_step_end(0, trials[1:])  # nothing running: no table
    assert capsys.readouterr().out == ""


def test_an_error_is_shown_by_its_own_last_line():
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: broke\n"
    assert error_line(trace) == "ValueError: broke"
    assert error_line(RuntimeError()) == "RuntimeError"
    assert error_line(None) == ""
