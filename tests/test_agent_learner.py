"""Learner step: every switch combination trains, DDQN uses the online argmax, NoisyNet noise and σ gradients,
target updates, decoupled weight decay, state round trip, and a float-only agent that learns a chain."""

from __future__ import annotations

import io
import itertools

import numpy as np
import pytest
import torch

from trackrl.agent import Learner, select_actions
from trackrl.agent.learner import (
    batch_to_tensors,
    decay_parameter_groups,
    parametrized_modules,
    refresh_power_iteration,
)
from trackrl.agent.losses import quantile_huber_loss
from trackrl.config import TrackRLConfig
from trackrl.errors import UserError
from trackrl.replay import ReplayBatch, ReplayBuffer

FLOAT_DIM = 4
IMAGE_PX = 34


@pytest.fixture(autouse=True)
def single_torch_thread():
    # Tiny tensors: a second thread only adds synchronisation, which is slow on a loaded 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(**switches) -> TrackRLConfig:
    config = TrackRLConfig()
    config.nn.image_height_px = config.nn.image_width_px = IMAGE_PX
    config.nn.float_hidden_dim = 8
    config.nn.dense_hidden_dimension = 16
    config.nn.iqn_embedding_dimension = 8
    config.nn.iqn_n = 4
    config.nn.vis.cnn.impala_model_size = 1
    config.nn.vis.cnn.adaptive_maxpool_size = 2
    config.training.batch_size = 4
    for name, value in switches.items():
        for section in (config.nn, config.nn.vis.cnn, config.btr, config.training, config.memory):
            if name in type(section).model_fields:
                setattr(section, name, value)
    return config


def filled_buffer(config: TrackRLConfig, n_transitions: int = 12, seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    use_image = config.nn.use_image
    buffer = ReplayBuffer(
        64, FLOAT_DIM, (1, IMAGE_PX, IMAGE_PX) if use_image else None, config.training.n_steps, seed=seed,
        prioritized=config.memory.use_prioritized_replay, prio_alpha=config.memory.prio_alpha,
    )
    images = rng.integers(0, 256, (n_transitions + 1, 1, IMAGE_PX, IMAGE_PX), dtype=np.uint8) if use_image else None
    floats = rng.standard_normal((n_transitions + 1, FLOAT_DIM)).astype(np.float32)
    buffer.add_episode(images, floats, rng.integers(0, 12, n_transitions), rng.standard_normal(n_transitions), True)
    return buffer


def make_learner(config: TrackRLConfig, seed: int = 0) -> Learner:
    return Learner(config, FLOAT_DIM, np.zeros(FLOAT_DIM), np.ones(FLOAT_DIM), seed=seed)


SWITCHES = ("use_impala_cnn", "use_adaptive_maxpool", "use_layer_norm", "use_noisy_linear", "use_dueling",
            "use_prioritized_replay")


def test_every_switch_combination_builds_and_trains_one_step() -> None:
    built = 0
    for values in itertools.product([False, True], repeat=len(SWITCHES)):
        switches = dict(zip(SWITCHES, values, strict=True))
        for target in ("max", "ddqn", "munchausen"):
            spectral_norms = [False, True] if switches["use_impala_cnn"] else [False]
            for use_spectral_norm in spectral_norms:
                config = tiny_config(
                    **switches, use_spectral_norm=use_spectral_norm,
                    use_ddqn=target == "ddqn", use_munchausen=target == "munchausen",
                )
                learner = make_learner(config)
                buffer = filled_buffer(config)
                before = [p.detach().clone() for p in learner.online_network.parameters()]
                result = learner.learn(buffer, learning_rate=1e-3, gamma=0.99, mini_race_duration_actions=5)
                assert np.isfinite(result.loss) and np.isfinite(result.mean_q) and result.grad_norm > 0
                assert result.new_priorities.shape == (4,) and learner.batches_done == 1
                after = list(learner.online_network.parameters())
                assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
                built += 1
    assert built == 64 * 3 + 32 * 3  # spectral norm doubles the IMPALA half


def test_every_float_only_switch_combination_trains_one_step() -> None:
    switches = ("use_layer_norm", "use_noisy_linear", "use_dueling", "use_prioritized_replay")
    for values in itertools.product([False, True], repeat=len(switches)):
        for target in ("max", "ddqn", "munchausen"):
            for target_update in ("soft", "hard"):
                config = tiny_config(
                    use_image=False, **dict(zip(switches, values, strict=True)), use_ddqn=target == "ddqn",
                    use_munchausen=target == "munchausen", target_update=target_update,
                )
                learner = make_learner(config)
                result = learner.learn(filled_buffer(config), 1e-3, 0.99, 5)
                assert np.isfinite(result.loss) and result.grad_norm > 0


def set_constant_head(network, advantage_bias: list[float]) -> None:
    """Make Z(s, a; τ) = A_b[a] − mean A_b exactly, whatever s and τ: zero output weights, value bias 0."""
    with torch.no_grad():
        network.advantage_head.out.weight.zero_()
        network.advantage_head.out.bias.copy_(torch.tensor(advantage_bias))
        network.value_head.out.weight.zero_()
        network.value_head.out.bias.zero_()


def constant_batch(config: TrackRLConfig) -> ReplayBatch:
    return ReplayBatch(
        state_images=None, state_floats=np.zeros((2, FLOAT_DIM), np.float32), actions=np.array([0, 1]),
        returns=np.array([0.5, -1.0], np.float32), next_images=None,
        next_floats=np.ones((2, FLOAT_DIM), np.float32), discounts=np.array([0.9, 0.0], np.float32),
        weights=np.ones(2, np.float32), indices=np.array([0, 1]),
    )


@pytest.mark.parametrize("use_ddqn", [False, True])
def test_double_dqn_evaluates_the_online_argmax_with_the_target_net(use_ddqn: bool) -> None:
    config = tiny_config(use_image=False, use_ddqn=use_ddqn)
    learner = make_learner(config)
    online_bias = [0.0] * 12
    online_bias[3] = 10.0  # online argmax: action 3
    target_bias = [0.0] * 12
    target_bias[5], target_bias[3] = 10.0, 5.0  # target argmax: action 5; mean A_b = 15/12
    set_constant_head(learner.online_network, online_bias)
    set_constant_head(learner.target_network, target_bias)
    from trackrl.agent.learner import batch_to_tensors

    targets = learner.compute_targets(batch_to_tensors(constant_batch(config), torch.device("cpu")))
    next_value = (5.0 if use_ddqn else 10.0) - 15.0 / 12
    expected = torch.tensor([[0.5 + 0.9 * next_value] * 4, [-1.0] * 4])
    assert torch.allclose(targets, expected, atol=1e-5)


class TauTable(torch.nn.Module):
    """A hand-built target net: Z(s, a; τ) = τ for action 0 and 0.5 for every other action, whatever s.

    It hands out τ = 0.9 for the first N' samples and 0.1 for the rest, so the N' scoring samples alone would pick
    action 0 (mean 0.9 > 0.5) while a separate K-sample estimate picks another action (mean 0.1 < 0.5)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[int] = []

    def forward(self, images, floats, n_quantiles, taus=None):
        self.requests.append(n_quantiles)
        batch_size = floats.shape[0]
        taus = torch.full((batch_size, n_quantiles), 0.1)
        taus[:, : self.n_target] = 0.9
        quantiles = torch.full((batch_size, n_quantiles, 12), 0.5)
        quantiles[:, :, 0] = taus
        return quantiles, taus


def test_max_target_chooses_a_star_with_k_separate_samples() -> None:
    config = tiny_config(use_image=False)
    config.nn.iqn_n, config.nn.iqn_k = 4, 6
    learner = make_learner(config)
    table = TauTable()
    table.n_target = config.nn.iqn_n
    learner.target_network = table
    from trackrl.agent.learner import batch_to_tensors

    targets = learner.compute_targets(batch_to_tensors(constant_batch(config), torch.device("cpu")))
    assert table.requests == [4 + 6]  # one target pass: N' scoring + K choosing samples per state
    # a* = argmax over the K-sample means = an action worth 0.5 at every scoring τ (not action 0, worth 0.9).
    expected = torch.tensor([[0.5 + 0.9 * 0.5] * 4, [-1.0] * 4])
    assert torch.allclose(targets, expected, atol=1e-6)


def test_a_resumed_learner_draws_a_fresh_random_stream() -> None:
    config = tiny_config(use_image=False, use_noisy_linear=True)

    def first_draws(frames_played: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        learner = Learner(config, FLOAT_DIM, np.zeros(FLOAT_DIM), np.ones(FLOAT_DIM), seed=3,
                          frames_played=frames_played)
        weights = learner.online_network.float_head[0].weight.detach().clone()
        _, taus = learner.online_network(None, torch.zeros(2, FLOAT_DIM), 4)
        learner.online_network.reset_noise()
        return weights, taus, learner.online_network.advantage_head.hidden.epsilon_in.clone()

    fresh_weights, fresh_taus, fresh_noise = first_draws(0)
    resumed_weights, resumed_taus, resumed_noise = first_draws(120_000)
    _, again_taus, again_noise = first_draws(120_000)
    assert torch.equal(fresh_weights, resumed_weights)  # the initial weights come from the seed alone
    assert not torch.equal(fresh_taus, resumed_taus) and not torch.equal(fresh_noise, resumed_noise)
    assert torch.equal(resumed_taus, again_taus) and torch.equal(resumed_noise, again_noise)  # reproducible
    from trackrl.agent.learner import random_stream_seed

    assert random_stream_seed(0, 1) != random_stream_seed(1, 0)  # not seed + frames


def test_noise_is_resampled_every_batch_and_sigma_gets_gradient() -> None:
    config = tiny_config(use_image=False, use_noisy_linear=True)
    learner = make_learner(config)
    buffer = filled_buffer(config)
    online_layer = learner.online_network.advantage_head.hidden
    target_layer = learner.target_network.advantage_head.hidden
    online_noise, target_noise = online_layer.epsilon_in.clone(), target_layer.epsilon_in.clone()
    learner.learn(buffer, 1e-3, 0.99, 0)
    assert not torch.equal(online_noise, online_layer.epsilon_in)
    assert not torch.equal(target_noise, target_layer.epsilon_in)
    assert online_layer.weight_sigma.grad is not None and online_layer.weight_sigma.grad.abs().sum() > 0
    assert online_layer.bias_sigma.grad.abs().sum() > 0
    sigma_before = online_layer.weight_sigma.detach().clone()
    online_noise = online_layer.epsilon_in.clone()
    learner.learn(buffer, 1e-3, 0.99, 0)
    assert not torch.equal(online_noise, online_layer.epsilon_in)
    assert not torch.equal(sigma_before, online_layer.weight_sigma)


def test_soft_target_update_is_polyak_averaging() -> None:
    config = tiny_config(use_image=False, target_update="soft", soft_update_tau=0.25)
    learner = make_learner(config)
    with torch.no_grad():
        for parameter in learner.target_network.parameters():
            parameter.fill_(1.0)
    learner.learn(filled_buffer(config), 1e-3, 0.99, 0)
    for (name, online), target in zip(learner.online_network.named_parameters(),
                                      learner.target_network.parameters(), strict=True):
        assert torch.allclose(target, 0.75 * 1.0 + 0.25 * online.detach(), atol=1e-6), name


def effective_sigmas(network) -> list[tuple[float, float]]:
    """(σ the eval-mode net divides by, largest singular value of its own weight) for each spectral-norm conv."""
    pairs = []
    with torch.no_grad():
        for module in network.modules():
            if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
                original = module.parametrizations.weight.original
                sigma_used = float(original.norm() / module.weight.norm())  # weight = W / σ
                sigma_true = float(torch.linalg.matrix_norm(original.flatten(1), ord=2))
                pairs.append((sigma_used, sigma_true))
    return pairs


def test_soft_updates_keep_the_target_spectral_norm_exact() -> None:
    # Polyak-blending the power-iteration vectors u, v makes them shorter than 1 whenever the online net's vectors
    # turn, so the eval-mode target divides by σ = uᵀWv < σ_max and its residual convs come out scaled up. The
    # target's σ must stay its own weight's largest singular value.
    config = tiny_config(use_impala_cnn=True, use_spectral_norm=True, target_update="soft", soft_update_tau=0.05)
    learner = make_learner(config)
    online = learner.online_network
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 1, IMAGE_PX, IMAGE_PX), dtype=torch.uint8)
    for _ in range(200):
        with torch.no_grad():  # an online net that keeps changing: its top singular vectors turn every step
            for name, parameter in online.named_parameters():
                if name.endswith("parametrizations.weight.original"):
                    parameter.add_(0.2 * parameter.std() * torch.randn(parameter.shape, generator=generator))
            online(images, torch.zeros(2, FLOAT_DIM), 2)  # train mode: one power iteration, as in a learner step
        learner.update_target_network()
    assert not learner.target_network.training
    pairs = effective_sigmas(learner.target_network)
    assert len(pairs) == 12  # 3 stages x 2 residual blocks x 2 convs
    # One power iteration per update underestimates σ a little while the weights move this fast (the online net's
    # own estimate is off by up to ~7% here); blended vectors were off by ~30%.
    for sigma_used, sigma_true in pairs:
        assert sigma_used == pytest.approx(sigma_true, rel=0.05)
    for name, buffer in learner.target_network.named_buffers():
        if name.endswith(("._u", "._v")):
            assert float(buffer.norm()) == pytest.approx(1.0, abs=1e-5), name


def test_hard_target_update_copies_every_n_batches() -> None:
    config = tiny_config(use_image=False, target_update="hard", hard_update_period_batches=3)
    learner = make_learner(config)
    buffer = filled_buffer(config)
    initial = [p.clone() for p in learner.target_network.parameters()]
    for _ in range(2):
        learner.learn(buffer, 1e-3, 0.99, 0)
        assert all(torch.equal(a, b) for a, b in zip(initial, learner.target_network.parameters(), strict=True))
    learner.learn(buffer, 1e-3, 0.99, 0)
    for online, target in zip(learner.online_network.parameters(), learner.target_network.parameters(), strict=True):
        assert torch.equal(online, target)


def test_weight_decay_is_decoupled_and_proportional_to_lr() -> None:
    # With a zero loss gradient, Adam's update is 0 and only the decoupled decay acts: θ ← θ(1 − lr·ratio) on
    # weight matrices; biases are not decayed.
    config = tiny_config(use_image=False, weight_decay_lr_ratio=0.5)
    learner = make_learner(config)
    network = learner.online_network
    weight, bias = network.float_head[0].weight, network.float_head[0].bias
    weight_before, bias_before = weight.detach().clone(), bias.detach().clone()
    for parameter in network.parameters():  # the gradients are views of the optimiser's flat gradients
        parameter.grad.zero_()
    for group in learner.optimizer.param_groups:
        group["lr"] = 0.1
    learner.optimizer.step()
    assert torch.allclose(weight, weight_before * (1 - 0.1 * 0.5))
    assert torch.equal(bias, bias_before)


def test_learning_rate_is_set_per_step() -> None:
    config = tiny_config(use_image=False)
    learner = make_learner(config)
    learner.learn(filled_buffer(config), 3e-4, 0.99, 0)
    assert all(group["lr"] == 3e-4 for group in learner.optimizer.param_groups)


def test_prioritized_learn_writes_the_per_sample_loss_as_priority() -> None:
    config = tiny_config(use_image=False, use_prioritized_replay=True)
    config.memory.prio_alpha = 1.0
    learner = make_learner(config)
    buffer = filled_buffer(config)
    sampled: list[ReplayBatch] = []
    sample = buffer.sample
    buffer.sample = lambda *args: sampled.append(sample(*args)) or sampled[-1]  # spy on the batch learn() uses
    result = learner.learn(buffer, 1e-3, 0.99, 0)
    indices = sampled[0].indices
    _, last_occurrence = np.unique(indices[::-1], return_index=True)  # a slot drawn twice keeps its last priority
    slots = np.unique(indices)
    expected = result.new_priorities[len(indices) - 1 - last_occurrence] + buffer.prio_epsilon  # α = 1
    np.testing.assert_allclose(buffer.sum_tree.leaf_values(slots), expected, rtol=1e-5)


def test_priorities_near_the_mini_race_horizon_are_not_written() -> None:
    config = tiny_config(use_image=False, use_prioritized_replay=True, batch_size=32)
    config.memory.prio_alpha = 1.0
    learner = make_learner(config)
    buffer = ReplayBuffer(64, FLOAT_DIM, None, 3, seed=0, prioritized=True, prio_alpha=1.0,
                          min_horizon_to_update_priority_actions=5)
    rng = np.random.default_rng(0)
    buffer.add_episode(None, rng.standard_normal((41, FLOAT_DIM)).astype(np.float32), rng.integers(0, 12, 40),
                       rng.standard_normal(40), False)
    old = 7.0
    buffer.update_priorities(np.arange(40), np.full(40, old - buffer.prio_epsilon))
    sampled: list[ReplayBatch] = []
    sample = buffer.sample
    buffer.sample = lambda *args: sampled.append(sample(*args)) or sampled[-1]
    result = learner.learn(buffer, 1e-3, 0.99, 10)  # D = 10: samples at mini-race time c >= 5 keep their priority
    batch = sampled[0]
    assert not batch.updates_priority.all() and batch.updates_priority.any()
    np.testing.assert_array_equal(batch.updates_priority, batch.state_floats[:, 0] < 5)
    written = {}
    for slot, priority, update in zip(batch.indices, result.new_priorities, batch.updates_priority, strict=True):
        if update:
            written[int(slot)] = priority + buffer.prio_epsilon  # the last written value wins
    for slot in np.unique(batch.indices):
        expected = written.get(int(slot), old)
        assert buffer.sum_tree.leaf_values([slot])[0] == pytest.approx(expected, rel=1e-5)


def test_state_round_trips_through_torch_save_with_weights_only() -> None:
    config = tiny_config(use_impala_cnn=True, use_spectral_norm=True, use_noisy_linear=True, use_layer_norm=True)
    learner = make_learner(config, seed=1)
    buffer = filled_buffer(config)
    learner.learn(buffer, 1e-3, 0.99, 0)
    stream = io.BytesIO()
    torch.save(learner.state_dict(), stream)
    stream.seek(0)
    state = torch.load(stream, weights_only=True)
    restored = make_learner(config, seed=99)
    restored.load_state_dict(state)
    assert restored.batches_done == 1
    for a, b in zip(learner.online_network.state_dict().values(), restored.online_network.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    # Continuing from the restored state gives the same step as continuing the original.
    torch.manual_seed(3)
    buffer.rng = np.random.default_rng(3)
    original_result = learner.learn(buffer, 1e-3, 0.99, 0)
    torch.manual_seed(3)
    buffer.rng = np.random.default_rng(3)
    restored_result = restored.learn(buffer, 1e-3, 0.99, 0)
    assert original_result.loss == pytest.approx(restored_result.loss, rel=1e-6)
    inference = learner.inference_state_dict()
    assert set(inference) == set(learner.online_network.state_dict())


def test_mismatched_state_is_a_user_error() -> None:
    learner = make_learner(tiny_config(use_image=False))
    other = make_learner(tiny_config(use_image=False, use_dueling=False))
    with pytest.raises(UserError, match="do not match"):
        learner.load_state_dict(other.state_dict())
    with pytest.raises(UserError, match="missing"):
        learner.load_state_dict({"online": {}})


def test_same_seed_same_training() -> None:
    config = tiny_config(use_noisy_linear=True, use_impala_cnn=True)
    losses = []
    for _ in range(2):
        learner = make_learner(config, seed=4)
        buffer = filled_buffer(config, seed=4)
        losses.append([learner.learn(buffer, 1e-3, 0.99, 5).loss for _ in range(3)])
    assert losses[0] == losses[1]


CHAIN_LENGTH = 4
GO_RIGHT = 0


def chain_episode(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """A chain s_0 .. s_3 (one-hot floats). GO_RIGHT moves right, reward +1 on leaving s_3 (finish); any other
    action ends the episode with reward 0. Optimal: GO_RIGHT everywhere, Q*(s_k, GO_RIGHT) = γ^{3−k}."""
    state, floats, actions, rewards = 0, [], [], []
    while True:
        floats.append(np.eye(CHAIN_LENGTH, dtype=np.float32)[min(state, CHAIN_LENGTH - 1)])
        action = GO_RIGHT if rng.random() < 0.5 else int(rng.integers(1, 12))
        actions.append(action)
        if action != GO_RIGHT:
            rewards.append(0.0)
            break
        rewards.append(1.0 if state == CHAIN_LENGTH - 1 else 0.0)
        state += 1
        if state == CHAIN_LENGTH:
            break
    floats.append(np.zeros(CHAIN_LENGTH, dtype=np.float32))  # the final observation: never bootstrapped from
    return np.stack(floats), np.array(actions), np.array(rewards, dtype=np.float32), True


@pytest.mark.parametrize("target", ["max", "ddqn", "munchausen"])
def test_float_only_agent_learns_the_chain(target: str) -> None:
    config = tiny_config(use_image=False, use_munchausen=target == "munchausen", use_ddqn=target == "ddqn")
    config.nn.float_hidden_dim = 32
    config.nn.dense_hidden_dimension = 64
    config.nn.iqn_n = 8
    config.nn.iqn_kappa = 1.0
    config.training.batch_size = 64
    config.training.n_steps = 1
    config.training.weight_decay_lr_ratio = 0.0
    config.training.target_update = "hard"
    config.training.hard_update_period_batches = 20
    gamma = 0.9
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(5000, CHAIN_LENGTH, None, n_steps=1, seed=0)
    while len(buffer) < 2000:
        floats, actions, rewards, terminated = chain_episode(rng)
        buffer.add_episode(None, floats, actions, rewards, terminated)
    learner = Learner(config, CHAIN_LENGTH, np.zeros(CHAIN_LENGTH), np.ones(CHAIN_LENGTH), seed=0)
    for _ in range(400):
        learner.learn(buffer, 1e-3, gamma, 0)

    states = np.eye(CHAIN_LENGTH, dtype=np.float32)
    actions, q_values = select_actions(
        learner.online_network, None, states, n_quantiles=32, epsilon=0.0, epsilon_boltzmann=0.0,
        tau_epsilon_boltzmann=0.0, rng=rng, greedy=True,
    )
    assert actions.tolist() == [GO_RIGHT] * CHAIN_LENGTH
    optimal = gamma ** (CHAIN_LENGTH - 1 - np.arange(CHAIN_LENGTH))
    # Munchausen: the greedy action's bonus τ·lnπ ≈ 0 and the soft value ≈ max, so Q ≈ Q* for GO_RIGHT.
    np.testing.assert_allclose(q_values[:, GO_RIGHT], optimal, atol=0.1)
    other_actions = np.delete(q_values, GO_RIGHT, axis=1)
    if target == "munchausen":
        # A non-greedy action ends the episode with reward 0 plus the clipped bonus α·clip(τ·lnπ, l0, 0) = 0.9·(−1).
        np.testing.assert_allclose(other_actions, -0.9, atol=0.1)
    else:
        np.testing.assert_allclose(other_actions, 0.0, atol=0.1)


def test_conflicting_munchausen_and_ddqn_is_rejected_by_the_config() -> None:
    with pytest.raises((UserError, ValueError)):
        TrackRLConfig.model_validate({"btr": {"use_munchausen": True}, "training": {"use_ddqn": True}})


def _trained_state(config: TrackRLConfig) -> dict:
    learner = make_learner(config)
    learner.learn(filled_buffer(config), 1e-3, 0.99, 0)
    stream = io.BytesIO()
    torch.save(learner.state_dict(), stream)
    stream.seek(0)
    return torch.load(stream, weights_only=True)


def _edit_first_moment(state: dict, key: str, value: object) -> None:
    first = next(iter(state["optimizer"]["state"]))
    state["optimizer"]["state"][first][key] = value


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda s: s.update(batches_done="12"), "entry 'batches_done' must be a whole number >= 0, got '12'"),
        (lambda s: s.update(batches_done=-1), "entry 'batches_done' must be a whole number >= 0, got -1"),
        (lambda s: s.update(online=[1, 2]), "entry 'online' must be a state dict of tensors, got list"),
        (lambda s: s["target"].update({next(iter(s["target"])): 3.0}), "must be a tensor, got float"),
        (lambda s: s["online"][next(iter(s["online"]))].fill_(float("nan")), "has NaN/inf values"),
        (lambda s: _edit_first_moment(s, "exp_avg", torch.zeros(3)), "exp_avg' has shape (3,), the parameter has"),
        (lambda s: _edit_first_moment(s, "exp_avg_sq", [0.0]), "exp_avg_sq' has shape list"),
        (lambda s: _edit_first_moment(s, "step", torch.tensor(float("nan"))), ".step' is tensor(nan)"),
        (lambda s: s["optimizer"]["param_groups"][0].update(betas="0.9"), "betas' is '0.9', not two numbers"),
        (lambda s: s["optimizer"]["param_groups"][0].update(eps=None), "param_groups[0].eps' is None"),
        (lambda s: s.update(optimizer={"state": {}}), "entry 'optimizer' must be an optimiser state dict"),
    ],
)
def test_hand_edited_learner_state_is_refused_naming_the_entry(edit, problem: str) -> None:
    config = tiny_config(use_image=False)
    state = _trained_state(config)
    edit(state)
    with pytest.raises(UserError) as error:
        make_learner(config, seed=5).load_state_dict(state)
    assert problem in str(error.value)


def reference_train_step(learner: Learner, optimizer: torch.optim.Optimizer, batch: ReplayBatch, lr: float) -> float:
    """Learner.train_step written the plain way: per-parameter gradients, torch's clip_grad_norm_ over the
    parameters, a per-parameter AdamW, and a Polyak update looping over the state dict (u, v copied by the power
    iteration, not blended)."""
    config = learner.config
    online, target = learner.online_network, learner.target_network
    tensors = batch_to_tensors(batch, torch.device("cpu"))
    online.reset_noise()
    target.reset_noise()
    targets = learner.compute_targets(tensors)
    n = config.nn.iqn_n
    quantiles, taus = online(tensors["state_images"], tensors["state_floats"], n)
    chosen = quantiles.gather(2, tensors["actions"][:, None, None].expand(-1, n, 1)).squeeze(2)
    loss, _ = quantile_huber_loss(chosen, targets, taus, config.nn.iqn_kappa, tensors["weights"])
    for group in optimizer.param_groups:
        group["lr"] = lr
    online.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), config.training.clip_grad_norm, foreach=False)
    optimizer.step()
    online_state = online.state_dict()
    with torch.no_grad():
        for name, tensor in target.state_dict().items():
            if tensor.is_floating_point() and not name.endswith(("._u", "._v")):
                tensor.lerp_(online_state[name], config.training.soft_update_tau)
    refresh_power_iteration(parametrized_modules(target))
    return float(loss.detach())


@pytest.mark.parametrize("switches", [{"use_image": False, "use_noisy_linear": True, "use_layer_norm": True},
                                      {"use_impala_cnn": True, "use_spectral_norm": True}])  # fmt: skip
def test_flat_parameter_step_equals_the_per_parameter_step(switches: dict) -> None:
    # Clipping, AdamW and the Polyak update run on flat views of the parameters (agent/flat_parameters.py). Three
    # steps (clipping active, decay on) must equal the plain per-parameter computation, and the saved optimiser
    # state must be the one a per-parameter AdamW writes, so checkpoints keep their format.
    config = tiny_config(**switches, clip_grad_norm=0.05, weight_decay_lr_ratio=0.3, soft_update_tau=0.1)
    flat, plain = make_learner(config), make_learner(config)
    training = config.training
    optimizer = torch.optim.AdamW(
        decay_parameter_groups(plain.online_network, training.weight_decay_lr_ratio), lr=1.0,
        betas=(training.adam_beta1, training.adam_beta2), eps=training.adam_epsilon, foreach=False,
    )  # fmt: skip
    buffer = filled_buffer(config)
    for step in range(3):
        batch = buffer.sample(config.training.batch_size, 0.99, 0)
        torch.manual_seed(step)
        flat_loss = flat.train_step(batch, 1e-2).loss
        torch.manual_seed(step)
        assert reference_train_step(plain, optimizer, batch, 1e-2) == pytest.approx(flat_loss, rel=1e-5)
    for network in ("online_network", "target_network"):
        for (name, a), b in zip(getattr(flat, network).state_dict().items(),
                                getattr(plain, network).state_dict().values(), strict=True):  # fmt: skip
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"{network}.{name}")
    saved, expected = flat.state_dict()["optimizer"], optimizer.state_dict()
    assert [len(g["params"]) for g in saved["param_groups"]] == [len(g["params"]) for g in expected["param_groups"]]
    assert saved["state"].keys() == expected["state"].keys()
    for number, moments in expected["state"].items():
        for key, value in moments.items():
            torch.testing.assert_close(saved["state"][number][key], value, rtol=1e-5, atol=1e-7)
    # A per-parameter state (the format of earlier checkpoints) loads into the flat optimiser and trains on alike.
    restored = make_learner(config, seed=9)
    restored.load_state_dict({**plain.state_dict(), "optimizer": expected})
    batch = buffer.sample(config.training.batch_size, 0.99, 0)
    torch.manual_seed(5)
    restored_loss = restored.train_step(batch, 1e-2).loss
    torch.manual_seed(5)
    assert reference_train_step(plain, optimizer, batch, 1e-2) == pytest.approx(restored_loss, rel=1e-5)
    for a, b in zip(restored.online_network.parameters(), plain.online_network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_gradients_dropped_by_the_network_are_reattached() -> None:
    # zero_grad(set_to_none=True) on the network (as a user or a benchmark may call) drops the gradient views; the
    # next step must still train on its gradient (a fresh .grad tensor would never reach the flat optimiser, which
    # would then step on Adam's momentum alone).
    config = tiny_config(use_image=False)
    results = []
    for drop in (False, True):
        learner = make_learner(config)
        buffer = filled_buffer(config)
        torch.manual_seed(1)
        learner.learn(buffer, 1e-2, 0.99, 0)
        if drop:
            learner.online_network.zero_grad(set_to_none=True)
        learner.learn(buffer, 1e-2, 0.99, 0)
        results.append([p.detach().clone() for p in learner.online_network.parameters()])
    for kept, dropped in zip(*results, strict=True):
        assert torch.equal(kept, dropped)
