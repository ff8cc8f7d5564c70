"""The IQN network (Dabney et al. 2018) with Linesight's inputs and every BTR component as a switch.

    image (uint8, (x−128)/128) → classic 4-conv or IMPALA CNN ─┐
    floats ((x−mean)/std)      → 2-layer MLP ──────────────────┴→ concat = ψ(s)            (B, D)
    τ ~ U(0,1) → φ(τ) = LeakyReLU(W·[cos(π i τ)]_{i=0..63} + b)                               (B·N, D)
    ψ(s) ⊙ φ(τ) → dueling heads: Z_τ(s,a) = V_τ(s) + A_τ(s,a) − mean_a A_τ(s,a)               (B, N, A)

Options: LayerNorm between dense layers, NoisyLinear head layers (factorised, σ0/√in), float-only (no image head).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from trackrl.agent.impala import ClassicCNN, ImpalaCNN
from trackrl.agent.noisy import NoisyLinear
from trackrl.config.schema import BtrConfig, NnConfig, TrackRLConfig
from trackrl.errors import UserError

N_ACTIONS = 12  # Linesight's keyboard combinations
IMAGE_CHANNELS = 1


class NetworkConfigError(UserError, ValueError):
    """The nn/btr switches or normalisation statistics cannot build a network."""


def dense_layer(in_features: int, out_features: int, noisy: bool, sigma0: float) -> nn.Module:
    return NoisyLinear(in_features, out_features, sigma0) if noisy else nn.Linear(in_features, out_features)


class Head(nn.Module):
    """Two dense layers: Linear → [LayerNorm] → LeakyReLU → Linear (both noisy with NoisyNet)."""

    def __init__(self, in_features: int, hidden: int, out_features: int, btr_config: BtrConfig) -> None:
        super().__init__()
        noisy, sigma0 = btr_config.use_noisy_linear, btr_config.noisy_sigma0
        self.hidden = dense_layer(in_features, hidden, noisy, sigma0)
        self.norm = nn.LayerNorm(hidden) if btr_config.use_layer_norm else nn.Identity()
        self.activation = nn.LeakyReLU()
        self.out = dense_layer(hidden, out_features, noisy, sigma0)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.activation(self.norm(self.hidden(x))))


class IQNNetwork(nn.Module):
    def __init__(
        self,
        nn_config: NnConfig,
        btr_config: BtrConfig,
        float_input_dim: int,
        float_inputs_mean: np.ndarray,
        float_inputs_std: np.ndarray,
        n_actions: int = N_ACTIONS,
    ) -> None:
        super().__init__()
        cnn_config = nn_config.vis.cnn
        float_inputs_mean = np.asarray(float_inputs_mean, dtype=np.float32)
        float_inputs_std = np.asarray(float_inputs_std, dtype=np.float32)
        if float_inputs_mean.shape != (float_input_dim,) or float_inputs_std.shape != (float_input_dim,):
            raise NetworkConfigError(
                f"float input mean/std must have shape ({float_input_dim},), "
                f"got {float_inputs_mean.shape} and {float_inputs_std.shape}"
            )
        if not np.all(float_inputs_std > 0):
            bad = np.flatnonzero(~(float_inputs_std > 0)).tolist()
            raise NetworkConfigError(f"float input std must be > 0 everywhere; slots {bad} are not")
        if cnn_config.use_spectral_norm and not cnn_config.use_impala_cnn and nn_config.use_image:
            raise NetworkConfigError(
                "nn.vis.cnn.use_spectral_norm applies to the IMPALA residual convs, but use_impala_cnn is false "
                "(the classic 4-conv head has no residual convs); set use_impala_cnn: true or turn spectral norm off"
            )
        self.n_actions = n_actions
        self._noisy_layers: list[NoisyLinear] | None = None
        self._noise: Tensor | None = None  # see _noise_vector
        self._noise_views: list[tuple[Tensor, Tensor]] | None = None
        self.use_image = nn_config.use_image
        self.use_dueling = nn_config.use_dueling
        self.n_cosines = nn_config.iqn_embedding_dimension
        self.register_buffer("float_inputs_mean", torch.from_numpy(float_inputs_mean))
        self.register_buffer("float_inputs_std", torch.from_numpy(float_inputs_std))
        self.register_buffer("cosine_indices", torch.arange(self.n_cosines, dtype=torch.float32), persistent=False)

        image_features = 0
        self.image_head: nn.Module | None = None
        if self.use_image:
            pool_size = cnn_config.adaptive_maxpool_size if cnn_config.use_adaptive_maxpool else None
            if cnn_config.use_impala_cnn:
                self.image_head = ImpalaCNN(
                    IMAGE_CHANNELS,
                    cnn_config.impala_model_size,
                    cnn_config.use_spectral_norm,
                    btr_config.use_layer_norm,
                    pool_size,
                )
            else:
                self.image_head = ClassicCNN(IMAGE_CHANNELS, pool_size)
            image_features = self.count_image_features(nn_config.image_height_px, nn_config.image_width_px)
        self.float_head = nn.Sequential(
            nn.Linear(float_input_dim, nn_config.float_hidden_dim),
            nn.LeakyReLU(),
            nn.Linear(nn_config.float_hidden_dim, nn_config.float_hidden_dim),
            nn.LeakyReLU(),
        )
        self.dense_input_dim = image_features + nn_config.float_hidden_dim
        self.tau_embedding = nn.Sequential(nn.Linear(self.n_cosines, self.dense_input_dim), nn.LeakyReLU())
        if self.use_dueling:
            hidden = nn_config.dense_hidden_dimension // 2
            self.advantage_head = Head(self.dense_input_dim, hidden, n_actions, btr_config)
            self.value_head = Head(self.dense_input_dim, hidden, 1, btr_config)
        else:
            self.q_head = Head(self.dense_input_dim, nn_config.dense_hidden_dimension, n_actions, btr_config)

    def count_image_features(self, height_px: int, width_px: int) -> int:
        try:
            with torch.no_grad():
                return self.image_head(torch.zeros(1, IMAGE_CHANNELS, height_px, width_px)).shape[1]
        except RuntimeError as error:
            raise NetworkConfigError(
                f"nn.image_height_px x nn.image_width_px = {height_px}x{width_px} is too small for the "
                f"{type(self.image_head).__name__} image head (the classic 4-conv head needs at least 34x34): {error}"
            ) from error

    @property
    def noisy_layers(self) -> list[NoisyLinear]:
        # Found once: reset_noise runs every training batch and acting step, and walking the modules costs more
        # than drawing the noise of a small network.
        if self._noisy_layers is None:
            self._noisy_layers = [m for m in self.modules() if isinstance(m, NoisyLinear)]
        return self._noisy_layers

    def reset_noise(self) -> None:
        """New factorised noise f(ε) = sgn(ε)·√|ε|, ε ~ N(0, 1), for every NoisyLinear layer: one draw into one
        vector that the layers' ε_in / ε_out are views of (a handful of operations instead of a dozen per layer;
        the same random stream as drawing the vector with randn)."""
        noise = self._noise_vector()
        if noise is None:
            return
        noise.normal_()
        torch.mul(noise.sign(), noise.abs().sqrt_(), out=noise)

    def _noise_vector(self) -> Tensor | None:
        """The vector behind every layer's noise, made (again) when a layer's buffers are no longer its views (first
        call, or after ``.to()`` moved them)."""
        layers = self.noisy_layers
        if not layers:
            return None
        views = self._noise_views
        if views is None or any(layer.epsilon_in is not v_in for layer, (v_in, _) in zip(layers, views, strict=True)):
            sizes = [size for layer in layers for size in (layer.in_features, layer.out_features)]
            like = layers[0].epsilon_in
            self._noise = torch.zeros(sum(sizes), dtype=like.dtype, device=like.device)
            parts = self._noise.split(sizes)
            views = list(zip(parts[0::2], parts[1::2], strict=True))
            for layer, (epsilon_in, epsilon_out) in zip(layers, views, strict=True):
                epsilon_in.copy_(layer.epsilon_in)
                epsilon_out.copy_(layer.epsilon_out)
                layer.epsilon_in, layer.epsilon_out = epsilon_in, epsilon_out  # registered buffers: replaced
            self._noise_views = views
        return self._noise

    def set_noise_enabled(self, enabled: bool) -> None:
        for layer in self.noisy_layers:
            layer.noise_enabled = enabled

    @property
    def noise_enabled(self) -> bool:
        return any(layer.noise_enabled for layer in self.noisy_layers)

    def state_features(self, images: Tensor | None, floats: Tensor) -> Tensor:
        """ψ(s): image features (normalised (x−128)/128) concatenated with the float MLP output."""
        float_features = self.float_head((floats - self.float_inputs_mean) / self.float_inputs_std)
        if self.image_head is None:
            return float_features
        if images is None:
            raise ValueError("this network has an image head (nn.use_image=True) but images is None")
        image_features = self.image_head((images.float() - 128.0) / 128.0)
        return torch.cat([image_features, float_features], dim=1)

    def embed_taus(self, taus: Tensor) -> Tensor:
        """φ(τ) = LeakyReLU(W·[cos(π i τ)]_{i=0..n-1} + b), for τ of shape (B, N) → (B·N, D)."""
        cosines = torch.cos(math.pi * taus.reshape(-1, 1) * self.cosine_indices)
        return self.tau_embedding(cosines)

    def forward(
        self, images: Tensor | None, floats: Tensor, n_quantiles: int, taus: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        batch_size = floats.shape[0]
        if taus is None:
            taus = torch.rand(batch_size, n_quantiles, device=floats.device)
        psi = self.state_features(images, floats)  # (B, D)
        # ψ(s) broadcast over its N quantiles (no repeated copy): rows b·N .. b·N+N−1 belong to state b.
        embedding = self.embed_taus(taus).view(batch_size, n_quantiles, -1)
        features = (psi[:, None, :] * embedding).view(batch_size * n_quantiles, -1)
        if self.use_dueling:
            advantages = self.advantage_head(features)
            quantiles = self.value_head(features) + advantages - advantages.mean(dim=1, keepdim=True)
        else:
            quantiles = self.q_head(features)
        return quantiles.view(batch_size, n_quantiles, self.n_actions), taus


def build_network(
    config: TrackRLConfig,
    float_input_dim: int,
    float_inputs_mean: np.ndarray,
    float_inputs_std: np.ndarray,
) -> IQNNetwork:
    return IQNNetwork(config.nn, config.btr, float_input_dim, float_inputs_mean, float_inputs_std)
