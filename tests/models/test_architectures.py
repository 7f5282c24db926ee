"""Every architecture builds, runs, and declares a layer list that covers its parameters (heads excepted)."""

import pytest
import torch
from safetensors.torch import save_file

from jointnet_cli.errors import RunFailure, UserError
from jointnet_cli.joint.layers import check_layers
from jointnet_cli.models.registry import build, initial_weights


@pytest.mark.parametrize("arch, size, expected_layers", [("ae9", 32, 9), ("convnet", 32, 4), ("resnet18", 32, 20),
                                                        ("inception_v3", 75, 94)])
def test_layer_lists_cover_every_parameter_but_the_head(arch, size, expected_layers):
    built = build(arch, image_size=size, num_classes=5, width=8)
    check_layers(built.model, built.layers)
    assert len(built.layers) == expected_layers
    covered = {n for layer in built.layers for n in layer}
    rest = {n for n, _ in built.model.named_parameters()} - covered
    assert rest == set(getattr(built.model, "head_names", ()))
    built.model.eval()
    with torch.no_grad():
        out = built.model(torch.rand(2, 3, size, size))
    assert out.shape == ((2, 3, size, size) if arch == "ae9" else (2, 5))


def test_init_weights_from_a_safetensors_file_sets_the_starting_backbone(tmp_path):
    model = build("convnet", image_size=32, num_classes=3, width=4).model
    backbone = {k: torch.full_like(v, 0.5) for k, v in model.state_dict().items()
                if not k.startswith("head") and k != "class_mask"}
    save_file(backbone, tmp_path / "w.safetensors")
    initial_weights(model, arch="convnet", pretrained=False, init_weights=str(tmp_path / "w.safetensors"))
    assert (model.conv3[0].weight == 0.5).all() and not (model.head.weight == 0.5).all()

    del backbone["conv2.0.weight"]
    backbone["conv1.0.weight"] = torch.zeros(1)
    save_file(backbone, tmp_path / "bad.safetensors")
    with pytest.raises(UserError, match=r"1 missing \(e.g. conv2.0.weight\).*1 of another shape"):
        initial_weights(model, arch="convnet", pretrained=False, init_weights=str(tmp_path / "bad.safetensors"))


def test_a_pickle_handed_as_init_weights_is_refused_unread(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    (tmp_path / "w.pt").write_bytes(pickle.dumps({"x": Boom()}))
    model = build("convnet", image_size=32, num_classes=3, width=4).model
    with pytest.raises(UserError, match="not a safetensors file"):
        initial_weights(model, arch="convnet", pretrained=False, init_weights=str(tmp_path / "w.pt"))
    assert not (tmp_path / "pwned").exists()


def test_pretrained_offline_says_what_to_do(monkeypatch):
    import urllib.error

    def offline(url, **kw):
        assert url.startswith("https://download.pytorch.org/models/resnet18")
        assert kw.get("weights_only") is True                  # never unpickles arbitrary objects
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    model = build("resnet18", image_size=32, num_classes=3).model
    with pytest.raises(RunFailure, match="could not fetch the pretrained resnet18 weights.*--init-weights"):
        initial_weights(model, arch="resnet18", pretrained=True, init_weights="")
