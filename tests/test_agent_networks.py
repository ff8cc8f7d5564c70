"""Networks: shapes, normalisation, dueling, IMPALA, spectral norm placement, NoisyLinear, float-only mode."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from trackrl.agent import IQNNetwork, NoisyLinear, build_network
from trackrl.agent.impala import ImpalaCNN
from trackrl.config import TrackRLConfig
from trackrl.errors import UserError

FLOAT_DIM = 5
IMAGE_PX = 34  # the smallest image the classic 4-conv head accepts


def tiny_config(**switches: bool) -> TrackRLConfig:
    config = TrackRLConfig()
    config.nn.image_height_px = config.nn.image_width_px = IMAGE_PX
    config.nn.float_hidden_dim = 8
    config.nn.dense_hidden_dimension = 16
    config.nn.iqn_embedding_dimension = 8
    config.nn.vis.cnn.impala_model_size = 1
    config.nn.vis.cnn.adaptive_maxpool_size = 2
    for name, value in switches.items():
        for section in (config.nn, config.nn.vis.cnn, config.btr):
            if name in type(section).model_fields:
                setattr(section, name, value)
    return config


def tiny_network(**switches: bool) -> IQNNetwork:
    return build_network(tiny_config(**switches), FLOAT_DIM, np.zeros(FLOAT_DIM), np.ones(FLOAT_DIM))


def inputs(batch_size: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size, 1, IMAGE_PX, IMAGE_PX), dtype=torch.uint8, generator=generator)
    return images, torch.randn(batch_size, FLOAT_DIM, generator=generator)


@pytest.mark.parametrize("use_impala_cnn", [False, True])
def test_output_shapes_and_given_taus(use_impala_cnn: bool) -> None:
    network = tiny_network(use_impala_cnn=use_impala_cnn)
    images, floats = inputs()
    quantiles, taus = network(images, floats, 4)
    assert quantiles.shape == (3, 4, 12) and taus.shape == (3, 4)
    assert torch.all((taus >= 0) & (taus < 1))
    given = torch.full((3, 2), 0.5)
    quantiles_given, taus_given = network(images, floats, 2, given)
    assert torch.equal(taus_given, given)
    # Same τ for both quantiles → identical rows; the batch rows are independent of each other.
    assert torch.allclose(quantiles_given[:, 0], quantiles_given[:, 1])
    single, _ = network(images[:1], floats[:1], 2, given[:1])
    assert torch.allclose(single[0], quantiles_given[0], atol=1e-6)


def test_dueling_advantages_have_zero_mean_over_actions() -> None:
    network = tiny_network(use_dueling=True)
    images, floats = inputs()
    taus = torch.rand(3, 2)
    quantiles, _ = network(images, floats, 2, taus)
    features = network.state_features(images, floats).repeat_interleave(2, 0) * network.embed_taus(taus)
    assert torch.allclose(quantiles.reshape(6, 12).mean(dim=1, keepdim=True), network.value_head(features), atol=1e-5)


def test_inputs_are_normalised() -> None:
    mean = np.arange(FLOAT_DIM, dtype=np.float32)
    std = np.full(FLOAT_DIM, 2.0, dtype=np.float32)
    network = build_network(tiny_config(), FLOAT_DIM, mean, std)
    images = torch.full((1, 1, IMAGE_PX, IMAGE_PX), 128, dtype=torch.uint8)  # normalises to exactly 0
    floats = torch.from_numpy(mean + std).unsqueeze(0)  # normalises to 1
    features = network.state_features(images, floats)
    expected_float_features = network.float_head(torch.ones(1, FLOAT_DIM))
    expected_image_features = network.image_head(torch.zeros(1, 1, IMAGE_PX, IMAGE_PX))
    assert torch.allclose(features, torch.cat([expected_image_features, expected_float_features], 1))


def test_cosine_embedding_uses_indices_zero_to_n_minus_one() -> None:
    network = tiny_network()
    linear = network.tau_embedding[0]
    tau = torch.tensor([[0.3]])
    cosines = torch.tensor([[np.cos(np.pi * i * 0.3) for i in range(8)]], dtype=torch.float32)
    expected = torch.nn.functional.leaky_relu(cosines @ linear.weight.T + linear.bias)
    assert torch.allclose(network.embed_taus(tau), expected, atol=1e-6)


def test_too_small_image_is_a_user_error() -> None:
    config = tiny_config()
    config.nn.image_height_px = config.nn.image_width_px = 16
    with pytest.raises(UserError, match="too small"):
        build_network(config, FLOAT_DIM, np.zeros(FLOAT_DIM), np.ones(FLOAT_DIM))


def test_float_only_network_has_no_image_head() -> None:
    network = tiny_network(use_image=False)
    assert network.image_head is None
    quantiles, _ = network(None, torch.randn(2, FLOAT_DIM), 3)
    assert quantiles.shape == (2, 3, 12)
    assert not any(isinstance(m, nn.Conv2d) for m in network.modules())


def test_impala_channels_and_adaptive_maxpool_features() -> None:
    cnn = ImpalaCNN(1, width_scale=2, use_spectral_norm=False, use_layer_norm=False, adaptive_maxpool_size=6)
    assert [stage.stem_conv.out_channels for stage in cnn.stages] == [32, 64, 64]  # BTR: 16/32/32 × 2
    assert cnn(torch.zeros(2, 1, 64, 64)).shape == (2, 64 * 6 * 6)  # BTR's 2,304 features


def test_spectral_norm_only_on_residual_convs() -> None:
    network = tiny_network(use_impala_cnn=True, use_spectral_norm=True, use_layer_norm=True, use_noisy_linear=True)
    normalised, plain = [], []
    for name, module in network.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear | NoisyLinear):
            (normalised if parametrize.is_parametrized(module) else plain).append(name)
    assert len(normalised) == 3 * 2 * 2  # 3 stages x 2 residual blocks x 2 convs
    assert all(".residual" in name for name in normalised)
    assert any("stem_conv" in name for name in plain)
    assert not any(".residual" in name for name in plain if "image_head" in name)


def test_spectral_norm_without_impala_is_a_user_error() -> None:
    with pytest.raises(UserError, match="use_impala_cnn"):
        tiny_network(use_spectral_norm=True, use_impala_cnn=False)


def test_bad_normalisation_statistics_are_user_errors() -> None:
    with pytest.raises(UserError, match="std"):
        build_network(tiny_config(), FLOAT_DIM, np.zeros(FLOAT_DIM), np.array([1, 1, 0, 1, 1.0]))
    with pytest.raises(UserError, match="shape"):
        build_network(tiny_config(), FLOAT_DIM, np.zeros(3), np.ones(3))


def test_noisy_linear_noise_off_is_the_mean_layer_and_resampling_changes_output() -> None:
    torch.manual_seed(0)
    layer = NoisyLinear(6, 4, sigma0=0.5)
    assert torch.allclose(layer.weight_sigma, torch.full((4, 6), 0.5 / 6**0.5))
    assert layer.weight_mu.abs().max() <= 1 / 6**0.5
    x = torch.randn(3, 6)
    layer.noise_enabled = False
    assert torch.allclose(layer(x), x @ layer.weight_mu.T + layer.bias_mu)
    layer.noise_enabled = True
    first = layer(x)
    assert torch.equal(first, layer(x))  # noise only changes in reset_noise()
    layer.reset_noise()
    assert not torch.allclose(first, layer(x))
    # Factorised noise: ε_w = f(ε_out) ⊗ f(ε_in) with f(x) = sgn(x)√|x| → rank one.
    weight_noise = (layer.weight_mu + layer.weight_sigma * torch.outer(layer.epsilon_out, layer.epsilon_in))
    assert torch.linalg.matrix_rank(weight_noise - layer.weight_mu) == 1


def test_network_noise_switch_reaches_every_noisy_layer() -> None:
    network = tiny_network(use_noisy_linear=True, use_dueling=True)
    assert len(network.noisy_layers) == 4  # hidden + out of the A and V heads
    images, floats = inputs()
    taus = torch.full((3, 2), 0.5)
    network.set_noise_enabled(False)
    clean_1, _ = network(images, floats, 2, taus)
    network.reset_noise()
    clean_2, _ = network(images, floats, 2, taus)
    assert torch.equal(clean_1, clean_2)
    network.set_noise_enabled(True)
    noisy, _ = network(images, floats, 2, taus)
    assert not torch.allclose(noisy, clean_1)


def test_network_noise_is_one_factorised_draw_for_all_layers_and_copies_draw_their_own() -> None:
    # reset_noise draws one vector ε ~ N(0, 1) for all layers (in order: ε_in, ε_out of each) and stores
    # f(ε) = sgn(ε)·√|ε| in the layers' buffers, which are views of that vector.
    network = tiny_network(use_noisy_linear=True, use_dueling=True)
    layers = network.noisy_layers
    size = sum(layer.in_features + layer.out_features for layer in layers)
    torch.manual_seed(5)
    network.reset_noise()
    torch.manual_seed(5)
    draw = torch.randn(size)
    expected = (draw.sign() * draw.abs().sqrt()).split([n for m in layers for n in (m.in_features, m.out_features)])
    for k, layer in enumerate(layers):
        assert torch.equal(layer.epsilon_in, expected[2 * k]) and torch.equal(layer.epsilon_out, expected[2 * k + 1])
    # A deep copy (the learner's target net) and a moved copy each resample their own noise, not the original's.
    for other in (copy.deepcopy(network), copy.deepcopy(network).to("cpu", torch.float64)):
        before = [layer.epsilon_in.clone() for layer in layers]
        other.reset_noise()
        assert all(torch.equal(b, layer.epsilon_in) for b, layer in zip(before, layers, strict=True))
        assert not torch.equal(other.noisy_layers[0].epsilon_in.to(torch.float32), before[0])
        assert other.noisy_layers[0].epsilon_in.dtype == other.noisy_layers[0].weight_mu.dtype
