"""The nets layer: one torch-device resolver for every network and backend."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_interfaces.core.errors import InputError  # noqa: E402
from napari_interfaces.nets.device import resolve_device  # noqa: E402

NO_CUDA = not torch.cuda.is_available()


def test_auto_follows_the_setting(monkeypatch):
    monkeypatch.setenv("NAPARI_INTERFACES_TORCH_DEVICE", "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == resolve_device("") == torch.device("cpu")
    monkeypatch.setenv("NAPARI_INTERFACES_TORCH_DEVICE", "auto")
    assert resolve_device("auto").type == ("cpu" if NO_CUDA else "cuda")
    assert resolve_device("cpu") == torch.device("cpu")


def test_bad_devices_are_one_line_input_errors():
    with pytest.raises(InputError, match="bad torch device 'gpu0'"):
        resolve_device("gpu0")
    if NO_CUDA:
        with pytest.raises(InputError, match="no CUDA device"):
            resolve_device("cuda:1")


def test_every_user_resolves_through_it(monkeypatch):
    """The U-Net loader, the chip encoders and the torch multislice backend (HED: test_hed)."""
    import napari_interfaces.nets.device as device_module
    from napari_interfaces.cluster import features
    from napari_interfaces.segment import models, train
    from napari_interfaces.simulate import backends

    assert models.resolve_device is train.resolve_device is resolve_device
    assert features.resolve_device is resolve_device
    seen = []

    def spy(device="auto"):
        seen.append(device)
        return torch.device("cpu")

    monkeypatch.setattr(device_module, "resolve_device", spy)
    backends.TorchBackend("cpu")  # imports the resolver when a backend is built
    assert seen == ["cpu"]


def test_segment_image_accepts_auto_with_a_loaded_model():
    from napari_interfaces.nets.unet import UNet, UNetConfig
    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.segment.models import LoadedModel

    torch.manual_seed(0)
    model = LoadedModel(UNet(UNetConfig(width=4)).eval(), {"architecture": {"n_classes": 2}})
    img = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    auto = segment_image(img, model, pixel_size=1.0, device="auto")
    cpu = segment_image(img, model, pixel_size=1.0, device="cpu")
    np.testing.assert_array_equal(auto.labels, cpu.labels)
