"""Resumable training: a training process killed with SIGKILL resumes from its last checkpoint and ends
with the same weights as an uninterrupted run (CPU, one thread, same seed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from appshot_model.core.errors import AppshotInputError
from appshot_model.model.checkpoint import TrainingCheckpoint
from appshot_model.model.config import ModelConfig, TrainConfig
from appshot_model.model.train import train_gan

STEPS = 150
SCRIPT = """
import sys
import numpy as np
from pathlib import Path
from appshot_model.model.checkpoint import TrainingCheckpoint
from tests.appshot_model.model.test_checkpoint import run
run(TrainingCheckpoint(Path(sys.argv[1]), "inputs", every=5))
"""


def run(checkpoint: TrainingCheckpoint | None, steps: int = STEPS):
    """A tiny GAN training (the same in the test process and in the killed subprocess)."""
    rng = np.random.default_rng(0)
    contexts = [rng.random((3, 14, 14)).astype(np.float32)]
    traffic = [rng.random((4, 2, 14, 14)).astype(np.float32)]
    cfg = ModelConfig(features=4, disc_features=4, noise_dim=8, noise_channels=2)
    return train_gan(contexts, traffic, np.array([0.5, 0.5], np.float32), cfg,
                     TrainConfig(steps=steps, batch_size=4, tile=12, noise_draws=2, seed=3, device="cpu"),
                     checkpoint=checkpoint)


def test_killed_training_resumes_to_the_uninterrupted_result(tmp_path):
    path = tmp_path / "checkpoint.pt"
    env = {**os.environ, "APPSHOT_TORCH_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(path)], env=env)
    deadline = time.monotonic() + 120
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the training finished before it could be killed"
    killed_at = torch.load(path, weights_only=False)["step"]
    assert 0 < killed_at < STEPS
    resumed, resumed_discs, history = run(TrainingCheckpoint(path, "inputs", every=5))
    assert len(history["g_l1"]) == STEPS
    uninterrupted, discs, reference = run(None)
    for (name, a), b in zip(resumed.state_dict().items(), uninterrupted.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert torch.equal(resumed_discs["d1"].net[0].weight, discs["d1"].net[0].weight)
    assert history == reference


def test_checkpoint_of_other_inputs_is_ignored_and_a_corrupt_one_refused(tmp_path):
    path = tmp_path / "checkpoint.pt"
    run(TrainingCheckpoint(path, "inputs-a", every=5), steps=10)
    assert TrainingCheckpoint(path, "inputs-b").load() is None
    assert TrainingCheckpoint(path, "inputs-a").load()["step"] == 10
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AppshotInputError, match="checkpoint.pt is corrupt or truncated"):
        TrainingCheckpoint(path, "inputs-a").load()
