"""The study directory's copy in an object store, for studies whose storage is a URI.

Tune and Train write the trials, checkpoints and exports straight to the object store; the
study's own files (spec.json, state.json, results, the sqlite Optuna database) live in a local
directory on the driver, because sqlite needs a real file. They are copied up as trials finish
and when the study ends (also when it fails or is interrupted), and copied down when the local
directory is missing them, so a study can resume, or be re-read, from another head node.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from pathlib import Path

from ray import tune

from fdsl_ray import storage
from fdsl_ray.study.layout import OPTUNA_DB, STUDY_FILES

# Local copies of remote studies: the same absolute path on every head node of a cluster,
# because a resumed search reopens its sqlite database by the path it was created with.
LOCAL_COPIES = Path.home() / ".cache" / "fdsl-ray" / "studies"


def local_copy_dir(remote: str) -> Path:
    """Where the study at `remote` (a URI) is copied on this machine, named after the URI."""
    return LOCAL_COPIES / re.sub(r"[^A-Za-z0-9._-]+", "_", storage.normalize(remote))


def pull_study(remote: str, local: Path, *, refresh: bool = False) -> list[str]:
    """Copy the study files that exist remotely but not locally (all of them with `refresh`);
    returns their names."""
    pulled = []
    for name in STUDY_FILES:
        wanted = refresh or not (local / name).exists()
        if wanted and storage.is_file(storage.join(remote, name)):
            local.mkdir(parents=True, exist_ok=True)
            storage.download(storage.join(remote, name), local / name)
            pulled.append(name)
    return pulled


def push_study(local: Path, remote: str) -> None:
    """Copy the study files up; the database as a consistent snapshot (a file copy of a
    database being written could tear)."""
    for name in STUDY_FILES:
        path = local / name
        if not path.is_file():
            continue
        if name != OPTUNA_DB:
            storage.upload(path, storage.join(remote, name))
            continue
        with tempfile.TemporaryDirectory(prefix="fdsl-optuna-") as scratch:
            snapshot = Path(scratch) / name
            source, target = sqlite3.connect(path), sqlite3.connect(snapshot)
            try:
                source.backup(target)
            finally:
                source.close()
                target.close()
            storage.upload(snapshot, storage.join(remote, name))


class StudyMirror(tune.Callback):
    """Copies the study files up each time a trial ends, so a lost head node loses at most
    the trials still running."""

    def __init__(self, local: Path, remote: str) -> None:
        self.local, self.remote = local, remote

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        push_study(self.local, self.remote)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        push_study(self.local, self.remote)
