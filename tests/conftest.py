import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def spec():
    from sda_lab.representation.spectrogram import AudioSpectrogram

    return AudioSpectrogram()


def sine(freq=440.0, amp=0.5, seconds=1.0, sr=48_000):
    t = torch.arange(int(seconds * sr)) / sr
    return (amp * torch.sin(2 * torch.pi * freq * t)).view(1, 1, -1)  # (1, 1, samples)
