"""report.html of a real tiny study (the session's two-trial `pareto_study`): every image
loads, in Python and in headless Chromium, and the printed `fdsl pretrain` command rebuilds
the best trial's configs."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd
import PIL.Image
import pytest
from test_report import html_images

from fdsl_ray.study.layout import HTML_FILE
from fdsl_ray.study.report import trial_epochs, write_report

CHROMIUM = Path("/usr/bin/chromium")
# Set on the page's body once every image has loaded, or failed to.
_IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter((image) => !(image.complete && image.naturalWidth > 0));
  document.body.setAttribute("data-images", images.length + " loaded, " + broken.length
                             + " broken");
});
</script>
</body>"""


@pytest.fixture(scope="module")
def tiny_study(pareto_study) -> tuple[Path, Path]:
    """(study directory, report.md) of the session's two-trial, two-objective study."""
    return pareto_study.study_dir, write_report(pareto_study.study_dir)


@pytest.mark.slow
def test_every_image_is_an_embedded_png(tiny_study):
    study_dir, report = tiny_study
    page = (report.parent / HTML_FILE).read_text()
    images = html_images(page)
    # delta, the Pareto front, the curves and the previews; one parameter: no importances.
    assert len(images) == 4
    for name in ("objective_vs_delta", "pareto_front", "pretrain_curves", "previews"):
        assert (report.parent / f"{name}.png").read_bytes() in images
    assert "Skipped: only `delta` varied" in report.read_text()
    assert "Without recorded epochs" not in page and "Not previewed" not in page
    assert not re.search(r"\b(src|href)=\"(?!data:)", page)  # nothing outside the page


@pytest.mark.slow
def test_printed_command_rebuilds_the_best_trials_configs(tiny_study):
    from fdsl_ray.cli import build_parser
    from fdsl_ray.cli._overrides import parse_overrides
    from fdsl_ray.cli.pretrain import _config
    from fdsl_ray.formulas import create_generator
    from fdsl_ray.study.report import best_trial, load_results, trial_record

    study_dir, report = tiny_study
    command = report.read_text().split("```sh\n")[1].split("\n```")[0]
    args, extra = build_parser().parse_known_args(shlex.split(command.replace("\\\n", " "))[1:])
    record = trial_record(best_trial(load_results(study_dir)))
    generator = create_generator(args.generator, **parse_overrides(extra)).config
    # trial.json holds the study's keys; the generator fills in the rest.
    assert generator == create_generator(**record["generator"]).config
    assert json.loads(json.dumps(_config(args, generator).to_dict())) == record["pretrain"]


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no {CHROMIUM} (Debian: apt-get install "
                    "chromium): the page is checked in Python only")
def test_chromium_loads_every_image_and_draws_the_page(tiny_study, tmp_path):
    _, report = tiny_study
    page = tmp_path / "probed.html"
    page.write_text((report.parent / HTML_FILE).read_text().replace("</body>", _IMAGE_PROBE))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000"]
    dom = _chromium([*flags, "--dump-dom", page.as_uri()])
    assert 'data-images="4 loaded, 0 broken"' in dom
    shot = tmp_path / "report.png"
    _chromium([*flags, "--window-size=1200,3000", f"--screenshot={shot}",
               (report.parent / HTML_FILE).as_uri()])
    with PIL.Image.open(shot) as image:
        assert image.size == (1200, 3000)
        low, high = image.convert("L").getextrema()
        assert high - low > 100  # drawn, not a blank page


def _chromium(arguments: list[str]) -> str:
    """Chromium's stdout; on a timeout its whole process group (it forks helpers) is ended."""
    process = subprocess.Popen([str(CHROMIUM), *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, f"chromium exited with {process.returncode}"
    return out



@pytest.mark.slow
def test_a_copy_without_trial_histories_takes_tunes_epochs(tiny_study, tmp_path):
    """Fetched off a cluster (trial_dir out of reach, tune/ copied) and a trial whose
    trial.json has no epochs (stopped early): its curve comes from Tune's result.json."""
    study_dir, _ = tiny_study
    copy = tmp_path / "copy"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("report", "pretrain"))
    table = pd.read_parquet(copy / "results.parquet")
    table["trial_dir"] = ["/mnt/gone/tune/" + Path(path).name for path in table["trial_dir"]]
    table.to_parquet(copy / "results.parquet")
    record_path = copy / "tune" / Path(table["trial_dir"][0]).name / "trial.json"
    record = json.loads(record_path.read_text())
    epochs = [(item["epoch"], item["loss"]) for item in record.pop("history")]
    record_path.write_text(json.dumps(record))

    text = write_report(copy).read_text()
    assert "Loss and train top-1 per epoch of 2 trial(s)" in text
    assert "Not previewed" not in text and "```sh\nfdsl pretrain onepfrac" in text
    assert [(item["epoch"], item["loss"]) for item in trial_epochs(
        table.iloc[0], record, copy)] == epochs
