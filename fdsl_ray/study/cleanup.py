"""Removes the placement group of a trial's trainer once Tune has finished with the trial.

When Tune (ASHA, a stop condition) stops a trial while its nested TorchTrainer runs, the
trainer's controller dies with the trial, and its worker placement group stays reserved
(ray issue 54305). Ray's own cleaner finds such groups through the State API, so it does
nothing on a cluster without the dashboard, and the next trials then wait forever for CPUs.
Each trial's pre-training results name the group (pretrain.PLACEMENT_GROUP); this Tune
callback, running in the driver, removes it a few seconds after the trial ended.
"""

from __future__ import annotations

import time

import ray
from ray import tune
from ray.util.placement_group import PlacementGroup, remove_placement_group

from fdsl_ray.train.pretrain import PLACEMENT_GROUP

# Long enough for the stopped trial actor, and with it the trainer's controller, to exit, so
# that the controller cannot see its workers die and start a new group.
GRACE_SECONDS = 5.0


def remove_if_reserved(placement_group_id: str) -> bool:
    """Remove the group unless Ray already did; True when this call removed it."""
    group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(placement_group_id)))
    if ray.util.placement_group_table(group).get("state") in (None, "REMOVED"):
        return False
    remove_placement_group(group)
    return True


class PlacementGroupReaper(tune.Callback):
    def __init__(self, grace_seconds: float = GRACE_SECONDS) -> None:
        self.grace_seconds = grace_seconds
        self._latest: dict[str, str] = {}
        self._pending: list[tuple[float, str]] = []
        self.removed: list[str] = []

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get(PLACEMENT_GROUP):
            self._latest[trial.trial_id] = result[PLACEMENT_GROUP]

    def _schedule(self, trial) -> None:
        group = self._latest.pop(trial.trial_id, None)
        if group:
            self._pending.append((time.monotonic() + self.grace_seconds, group))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._schedule(trial)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._schedule(trial)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        self._schedule(trial)

    def on_step_begin(self, iteration, trials, **info) -> None:
        self._reap(wait=False)

    def on_experiment_end(self, trials, **info) -> None:
        # An interrupted study (Ctrl+C) ends without completing its running trials.
        for trial_id in list(self._latest):
            self._pending.append((time.monotonic() + self.grace_seconds,
                                  self._latest.pop(trial_id)))
        self._reap(wait=True)

    def _reap(self, wait: bool) -> None:
        now = time.monotonic()
        due = [item for item in self._pending if wait or item[0] <= now]
        self._pending = [item for item in self._pending if item not in due]
        for deadline, group in due:
            time.sleep(max(0.0, deadline - time.monotonic()))
            if remove_if_reserved(group):
                self.removed.append(group)
