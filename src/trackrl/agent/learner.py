"""The learner: one gradient step of IQN with the configured target (max / DDQN / Munchausen).

sample → resample NoisyNet noise (online and target) → target quantiles (no grad) → quantile Huber loss weighted by the
importance weights → backward → clip_grad_norm → AdamW step (decoupled decay λ·lr with λ = weight_decay_lr_ratio)
→ target update (soft Polyak τ every batch, or hard copy every N batches) → priorities = Σ_i mean_j |δ_ij| (BTR).
Clipping, AdamW and the Polyak update work on flat views of the parameters (flat_parameters.py): the same maths in
one operation per group instead of one per tensor, which on a CPU at batch 64 is most of their cost.

Random stream: the initial weights come from ``seed``; the τ samples and the NoisyNet noise from a stream seeded with
(seed, frames played), so a resumed run draws fresh ones instead of replaying the start of the run.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from trackrl.agent import cpu_losses, losses
from trackrl.agent.flat_parameters import FlatParameters
from trackrl.agent.losses import bootstrap_target, greedy_actions
from trackrl.agent.networks import IQNNetwork, build_network
from trackrl.config.schema import TrackRLConfig
from trackrl.errors import UserError
from trackrl.replay.batch import ReplayBatch
from trackrl.replay.buffer import ReplayBuffer


class LearnerStateError(UserError, ValueError):
    """A saved learner state does not fit this config's networks."""


@dataclass
class LearnerStepResult:
    loss: float
    mean_q: float  # mean over the batch and quantiles of Z(s_t, a_t) from the online net
    grad_norm: float  # total L2 norm of the gradients before clipping
    new_priorities: np.ndarray  # Σ_i mean_j |δ_ij| per sample (B,), float32


def decay_parameter_groups(network: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on weight matrices/kernels only: not on biases, norm gains, or NoisyNet σ (decaying σ would
    switch exploration off for a reason unrelated to the loss)."""
    decay, no_decay = [], []
    for name, parameter in network.named_parameters():
        if parameter.ndim >= 2 and "sigma" not in name:
            decay.append(parameter)
        else:
            no_decay.append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# The batch fields the loss reads; the buffer-side bookkeeping (indices, priority mask) stays on the host.
LOSS_FIELDS = ("state_images", "state_floats", "actions", "returns", "next_images", "next_floats", "discounts",
               "weights")  # fmt: skip


def batch_to_tensors(batch: ReplayBatch, device: torch.device) -> dict[str, Tensor | None]:
    def to_device(array: np.ndarray | None) -> Tensor | None:
        if array is None:
            return None
        tensor = torch.from_numpy(np.ascontiguousarray(array))
        return tensor if tensor.device == device else tensor.to(device, non_blocking=True)

    return {name: to_device(getattr(batch, name)) for name in LOSS_FIELDS}


def concat_optional(first: Tensor | None, second: Tensor | None) -> Tensor | None:
    return None if first is None else torch.cat([first, second], dim=0)


def random_stream_seed(seed: int, frames_played: int) -> int:
    """The seed of the learner's τ / noise stream: distinct for every (seed, frames) pair (not seed + frames, which
    gives run (0, frames=1) the stream of run (1, frames=0))."""
    return int(np.random.SeedSequence([seed, frames_played]).generate_state(1)[0])


def is_spectral_norm_vector(name: str) -> bool:
    """Spectral norm's power-iteration state (``...parametrizations.weight.0._u`` / ``._v``)."""
    return ".parametrizations." in name and name.rsplit(".", 1)[-1] in ("_u", "_v")


def soft_update_buffers(target: nn.Module, online: nn.Module) -> tuple[list[Tensor], list[Tensor]]:
    """The (target, online) float buffers a Polyak update blends besides the parameters: all but spectral norm's u, v.
    Blended unit vectors are shorter than 1, and the eval-mode target takes σ = uᵀWv from them as they are, so σ
    would come out too small and the normalised weight too large."""
    # keep_vars: the tensors themselves (load_state_dict copies into them in place, so the lists stay valid); the
    # state dict leaves out non-persistent buffers such as the NoisyNet noise, which is resampled anyway.
    online_tensors = online.state_dict(keep_vars=True)
    parameter_names = {name for name, _ in target.named_parameters()}
    pairs = [
        (tensor, online_tensors[name])
        for name, tensor in target.state_dict(keep_vars=True).items()
        if name not in parameter_names and tensor.is_floating_point() and not is_spectral_norm_vector(name)
    ]
    return [t.detach() for t, _ in pairs], [o.detach() for _, o in pairs]


def parametrized_modules(network: nn.Module) -> list[nn.Module]:
    return [module for module in network.modules() if parametrize.is_parametrized(module, "weight")]


def refresh_power_iteration(modules: list[nn.Module]) -> None:
    """One power iteration of each spectral-norm parametrisation on its own (blended) weight, as a train-mode forward
    does: the target's u, v stay unit vectors that track the target's weight."""
    with torch.no_grad():
        for module in modules:
            module.parametrizations.weight.train()
            module.weight  # noqa: B018  (the train-mode evaluation updates u, v in place)
            module.parametrizations.weight.eval()


class Learner:
    def __init__(
        self,
        config: TrackRLConfig,
        float_input_dim: int,
        float_inputs_mean: np.ndarray,
        float_inputs_std: np.ndarray,
        device: str = "cpu",
        seed: int = 0,
        frames_played: int = 0,
    ) -> None:
        torch.manual_seed(seed)  # torch's global RNG draws the initial weights ...
        self.config = config
        self.device = torch.device(device)
        self.online_network: IQNNetwork = build_network(
            config, float_input_dim, float_inputs_mean, float_inputs_std
        ).to(self.device)
        self.target_network: IQNNetwork = copy.deepcopy(self.online_network)
        self.target_network.requires_grad_(False)
        # eval(): spectral norm then uses the stored power-iteration vectors instead of updating them in place.
        self.target_network.eval()
        training = config.training
        # The parameters as views of one flat tensor per weight-decay group (online and target alike): clipping,
        # AdamW and the Polyak update then each run once per group instead of once per tensor (flat_parameters.py).
        groups = decay_parameter_groups(self.online_network, training.weight_decay_lr_ratio)
        self._flat_online = FlatParameters.of([group["params"] for group in groups])
        self._flat_target = FlatParameters.of(
            [group["params"] for group in decay_parameter_groups(self.target_network, 0.0)], with_gradients=False
        )
        target_buffers, online_buffers = soft_update_buffers(self.target_network, self.online_network)
        self._soft_update_target = [self._flat_target.values, *target_buffers]
        self._soft_update_online = [self._flat_online.values, *online_buffers]
        self._target_spectral_norms = parametrized_modules(self.target_network)
        # ... and then the τ samples and the NoisyNet noise, from a stream that depends on where the run is.
        torch.manual_seed(random_stream_seed(seed, frames_played))
        # AdamW decays by lr·weight_decay per step, so weight_decay = ratio gives decay = weight_decay_lr_ratio · lr.
        self.optimizer = torch.optim.AdamW(
            [
                {"params": [flat], "weight_decay": group["weight_decay"]}
                for flat, group in zip(self._flat_online.tensors, groups, strict=True)
            ],
            lr=training.lr_schedule[0][1],
            betas=(training.adam_beta1, training.adam_beta2),
            eps=training.adam_epsilon,
            fused=True,  # one kernel for every tensor: ~3x faster than the per-tensor loop on CPU, also on CUDA
        )
        self.batches_done = 0
        # On a CPU the loss, its gradient, the priorities and the Munchausen target run as numba loops (cpu_losses.py,
        # the same maths in one pass instead of ~35 small tensor operations); elsewhere as losses.py's tensor code.
        self.use_numba_losses = cpu_losses.numba_losses_apply(self.device, self._flat_online.values.dtype)

    def compute_targets(self, batch: dict[str, Tensor | None]) -> Tensor:
        """T_j (B, N') for the configured target; no gradient."""
        nn_config, btr = self.config.nn, self.config.btr
        n_target, n_select = nn_config.iqn_n, nn_config.iqn_k
        returns, discounts, actions = batch["returns"], batch["discounts"], batch["actions"]
        with torch.no_grad():
            if btr.use_munchausen:
                # One target pass over [s_t; s_{t+n}]: the log-policy bonus needs q̄(s_t,·), the soft value Z̄(s',·).
                images = concat_optional(batch["state_images"], batch["next_images"])
                floats = torch.cat([batch["state_floats"], batch["next_floats"]], dim=0)
                quantiles, _ = self.target_network(images, floats, n_target)
                current, following = quantiles.split(actions.shape[0], dim=0)
                target = cpu_losses.munchausen_target if self.use_numba_losses else losses.munchausen_target
                return target(
                    returns,
                    discounts,
                    actions,
                    current,
                    following,
                    btr.munchausen_entropy_tau,
                    btr.munchausen_alpha,
                    btr.munchausen_lo,
                )
            next_images, next_floats = batch["next_images"], batch["next_floats"]
            if self.config.training.use_ddqn:
                # Double DQN: the online net chooses a* (K samples of its own), the target net evaluates it.
                next_target_quantiles, _ = self.target_network(next_images, next_floats, n_target)
                choice_quantiles, _ = self.online_network(next_images, next_floats, n_select)
            else:
                # One target pass with N' + K fresh τ per state: the first N' score a*, the other K choose it.
                quantiles, _ = self.target_network(next_images, next_floats, n_target + n_select)
                next_target_quantiles, choice_quantiles = quantiles.split([n_target, n_select], dim=1)
            return bootstrap_target(returns, discounts, next_target_quantiles, greedy_actions(choice_quantiles))

    def train_step(self, batch: ReplayBatch, learning_rate: float) -> LearnerStepResult:
        tensors = batch_to_tensors(batch, self.device)
        if self.config.btr.use_noisy_linear:
            self.online_network.reset_noise()
            self.target_network.reset_noise()
        targets = self.compute_targets(tensors)

        n_online = self.config.nn.iqn_n
        quantiles, taus = self.online_network(tensors["state_images"], tensors["state_floats"], n_online)
        index = tensors["actions"][:, None, None].expand(-1, n_online, 1)
        chosen_quantiles = quantiles.gather(2, index).squeeze(2)  # Z_{τ_i}(s_t, a_t), (B, N)
        loss, priorities = self.quantile_loss(chosen_quantiles, targets, taus, tensors["weights"])

        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        self._flat_online.zero_grad()
        loss.backward()
        grad_norm = self._flat_online.clip_grad_norm_(self.config.training.clip_grad_norm)
        self.optimizer.step()
        self.batches_done += 1
        self.update_target_network()
        # One host transfer for the scalars and the priorities (one device sync instead of four on a GPU).
        with torch.no_grad():
            host = torch.cat([torch.stack([loss, chosen_quantiles.mean(), grad_norm]), priorities]).cpu().numpy()
        return LearnerStepResult(
            loss=float(host[0]), mean_q=float(host[1]), grad_norm=float(host[2]), new_priorities=host[3:]
        )

    def quantile_loss(self, chosen: Tensor, targets: Tensor, taus: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
        """The weighted quantile Huber loss and the PER priorities Σ_i mean_j |δ_ij| (BTR), of Z before the step."""
        kappa = self.config.nn.iqn_kappa
        if self.use_numba_losses:
            loss, _, priorities = cpu_losses.quantile_huber_loss_and_priorities(chosen, targets, taus, kappa, weights)
            return loss, priorities
        loss, _ = losses.quantile_huber_loss(chosen, targets, taus, kappa, weights)
        return loss, losses.td_error_priorities(chosen, targets)

    def update_target_network(self) -> None:
        training = self.config.training
        if training.target_update == "soft":
            # Polyak averaging θ' ← (1−τ)θ' + τθ, one fused call over every parameter and float buffer ...
            with torch.no_grad():
                torch._foreach_lerp_(self._soft_update_target, self._soft_update_online, training.soft_update_tau)
            # ... except spectral norm's u, v: one power iteration on the target's own weight instead.
            refresh_power_iteration(self._target_spectral_norms)
        elif self.batches_done % training.hard_update_period_batches == 0:
            self.target_network.load_state_dict(self.online_network.state_dict())

    def learn(
        self, buffer: ReplayBuffer, learning_rate: float, gamma: float, mini_race_duration_actions: int
    ) -> LearnerStepResult:
        batch = buffer.sample(self.config.training.batch_size, gamma, mini_race_duration_actions)
        result = self.train_step(batch, learning_rate)
        # Linesight: a transition sampled close to its mini-race horizon keeps its priority (its target was cut short,
        # so its TD error says little about the transition); see ReplayBuffer.sample.
        keep = batch.updates_priority
        buffer.update_priorities(batch.indices[keep], result.new_priorities[keep])
        return result

    def inference_state_dict(self) -> dict[str, Tensor]:
        """Online weights on the CPU, detached: what collectors load into their copy of the network."""
        return {k: v.detach().cpu().clone() for k, v in self.online_network.state_dict().items()}

    def state_dict(self) -> dict:
        return {
            "online": self.online_network.state_dict(),
            "target": self.target_network.state_dict(),
            # The format of an AdamW over the network's own parameters (one entry per parameter), not the flat one.
            "optimizer": self._flat_online.per_parameter_state(self.optimizer.state_dict()),
            "batches_done": self.batches_done,
        }

    def load_state_dict(self, state: dict) -> None:
        """Load a saved state, refusing one that would crash or silently corrupt training later (hand edits:
        wrong types, optimiser moments of the wrong shape, NaN weights); the error names the entry."""
        missing = {"online", "target", "optimizer", "batches_done"} - set(state)
        if missing:
            raise LearnerStateError(f"learner state is missing {sorted(missing)}")
        batches_done = state["batches_done"]
        if isinstance(batches_done, bool) or not isinstance(batches_done, int) or batches_done < 0:
            raise LearnerStateError(f"entry 'batches_done' must be a whole number >= 0, got {batches_done!r}")
        for key in ("online", "target"):
            _check_tensors(state[key], key)
        optimizer_state = state["optimizer"]
        if (
            not isinstance(optimizer_state, dict)
            or not {"state", "param_groups"} <= set(optimizer_state)
            or not isinstance(optimizer_state["state"], dict)
        ):
            raise LearnerStateError("entry 'optimizer' must be an optimiser state dict (state, param_groups)")
        try:
            self.online_network.load_state_dict(state["online"])
            self.target_network.load_state_dict(state["target"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise mismatch_error(error) from error
        self._check_optimizer(optimizer_state)
        try:
            self.optimizer.load_state_dict(self._flat_online.flat_state(optimizer_state))
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise mismatch_error(error) from error
        self.batches_done = batches_done

    def load_initial_weights(self, weights: dict[str, Tensor], source: str) -> None:
        """Start from another run's online weights (`trackrl train --init-from`): online and target networks get
        them, the optimiser and counters stay fresh. A layer missing, extra or of another shape is a
        LearnerStateError naming the layer and both shapes (a different nn config or float layout)."""
        own = self.online_network.state_dict()
        missing, extra = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
        if missing or extra:
            raise LearnerStateError(f"{source}: the network differs from this config's: layers missing {missing}, "
                                    f"layers this config does not have {extra}")  # fmt: skip
        for name, tensor in own.items():
            saved = weights[name]
            if not isinstance(saved, Tensor) or saved.shape != tensor.shape:
                shape = tuple(saved.shape) if isinstance(saved, Tensor) else type(saved).__name__
                raise LearnerStateError(f"{source}: layer '{name}' has shape {shape} there but {tuple(tensor.shape)} "
                                        "in this config's network (nn sizes or float layout differ)")  # fmt: skip
        _check_tensors(weights, "weights")
        self.online_network.load_state_dict(weights)
        self.target_network.load_state_dict(weights)

    def _check_optimizer(self, optimizer_state: dict) -> None:
        """A saved AdamW state (one entry per parameter) must fit the network: as many groups and parameters, moments
        of each parameter's shape, hyper-parameters that are numbers (torch checks neither at load, and fails on the
        first step or, worse, broadcasts)."""
        names = {id(p): name for name, p in self.online_network.named_parameters()}
        groups = optimizer_state["param_groups"]
        if not isinstance(groups, list) or len(groups) != len(self._flat_online.parameters):
            raise mismatch_error(f"the optimiser has {len(self._flat_online.parameters)} parameter groups")
        for g, (group, parameters) in enumerate(zip(groups, self._flat_online.parameters, strict=True)):
            for key in ("lr", "eps", "weight_decay"):
                if not _is_finite_number(group.get(key)):
                    raise LearnerStateError(f"entry 'optimizer.param_groups[{g}].{key}' is {group.get(key)!r}")
            betas = group.get("betas")
            if not (isinstance(betas, list | tuple) and len(betas) == 2 and all(_is_finite_number(b) for b in betas)):
                raise LearnerStateError(f"entry 'optimizer.param_groups[{g}].betas' is {betas!r}, not two numbers")
            numbers = group.get("params")
            if not isinstance(numbers, list) or len(numbers) != len(parameters):
                raise mismatch_error(f"optimiser group {g} holds {len(parameters)} parameters")
            for number, parameter in zip(numbers, parameters, strict=True):
                moments = optimizer_state["state"].get(number, {})
                where = f"optimizer.state of parameter '{names.get(id(parameter), '?')}'"
                if not isinstance(moments, dict):
                    raise LearnerStateError(f"entry '{where}' must be a dict of moments, got {type(moments).__name__}")
                for key, value in moments.items():
                    if key == "step":
                        step = value.item() if isinstance(value, Tensor) and value.numel() == 1 else value
                        if not _is_finite_number(step) or step < 0:
                            raise LearnerStateError(f"entry '{where}.step' is {value!r}, not a count >= 0")
                    elif not isinstance(value, Tensor) or value.shape != parameter.shape:
                        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                        raise LearnerStateError(
                            f"entry '{where}.{key}' has shape {shape}, the parameter has {tuple(parameter.shape)}"
                        )
                    elif not bool(torch.isfinite(value).all()):
                        raise LearnerStateError(f"entry '{where}.{key}' has NaN/inf values")


def mismatch_error(cause: object) -> LearnerStateError:
    return LearnerStateError(
        f"saved learner weights do not match this config's network (nn/btr switches changed?): {cause}"
    )


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _check_tensors(weights: Any, key: str) -> None:
    if not isinstance(weights, dict):
        raise LearnerStateError(f"entry '{key}' must be a state dict of tensors, got {type(weights).__name__}")
    for name, value in weights.items():
        if not isinstance(value, Tensor):
            raise LearnerStateError(f"entry '{key}.{name}' must be a tensor, got {type(value).__name__}")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise LearnerStateError(f"entry '{key}.{name}' has NaN/inf values")
