"""Training checkpoints: everything needed to continue a killed training run exactly where it stopped.

A checkpoint holds the step count, the generator's and discriminators' weights, both optimisers' states,
the random states (patch sampler, noise generator, torch's global generator for dropout) and the loss
history, keyed by the training inputs' hash so that a checkpoint of other inputs or settings is never
resumed. It is written atomically every ``every`` steps; a resumed run on the same device and thread
count continues bit for bit as the uninterrupted run would have.

Test hook (fault injection): with ``APPSHOT_FAIL_AFTER_CHECKPOINT=N`` in the environment, the first checkpoint
written at step ``N`` or later raises :class:`InjectedTrainingFault` right after it is saved, once per
checkpoint file (a marker file ``<checkpoint>.fault-injected`` beside it records that it happened), so a
retried run resumes from that checkpoint and completes.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from appshot_model.core.errors import AppshotInputError
from appshot_model.core.io import atomic_path

#: Environment variable of the fault-injection test hook (see the module docstring).
FAIL_AFTER_ENV = "APPSHOT_FAIL_AFTER_CHECKPOINT"


class InjectedTrainingFault(RuntimeError):
    """Raised once by the ``APPSHOT_FAIL_AFTER_CHECKPOINT`` test hook."""


@dataclass
class TrainingCheckpoint:
    """Where and how often to checkpoint one training run; ``key`` identifies its inputs and settings."""

    path: Path
    key: str
    every: int = 100

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.every < 1:
            raise AppshotInputError(f"checkpoint interval must be >= 1 step, got {self.every}")

    def due(self, step: int, total: int) -> bool:
        """Whether to write after ``step`` steps (every ``every`` steps and at the end)."""
        return step % self.every == 0 or step == total

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` (plus the key) atomically."""
        with atomic_path(self.path) as tmp:
            torch.save({"key": self.key, **state}, tmp)
        fail_after = os.environ.get(FAIL_AFTER_ENV)
        marker = self.path.with_name(self.path.name + ".fault-injected")
        if fail_after and state["step"] >= int(fail_after) and not marker.exists():
            marker.touch()
            raise InjectedTrainingFault(f"{FAIL_AFTER_ENV}={fail_after}: injected failure after the checkpoint at "
                                        f"step {state['step']} ({self.path})")

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is no checkpoint or it belongs to other inputs/settings."""
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=False)
        except (OSError, EOFError, RuntimeError, pickle.UnpicklingError) as exc:
            raise AppshotInputError(f"training checkpoint {self.path} is corrupt or truncated ({exc}); delete it "
                                    f"to train from the start") from exc
        return state if isinstance(state, dict) and state.get("key") == self.key else None

    def remove(self) -> None:
        """Delete the checkpoint (when its model has been stored)."""
        if self.path.exists():
            os.unlink(self.path)
