"""The IMPALA CNN (Espeholt et al. 2018) as used by BTR (Clark et al. 2024), and Linesight's classic 4-conv head.

IMPALA: 3 stages of [conv3x3 (stem) → maxpool(3, stride 2) → 2 residual blocks], channels 16/32/32 × width scale.
Residual block: x + conv(relu(conv(relu(x)))). BTR puts spectral norm on the residual convs only — never on the stem
convs or on linear layers ("dramatically worse", BTR section 4). The LayerNorm option (added to BTR after publication)
normalises each stage's stem-conv output over (C, H, W) — GroupNorm with one group, which also works for any input
size — before the max-pool.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

IMPALA_BASE_CHANNELS = (16, 32, 32)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, use_spectral_norm: bool) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        if use_spectral_norm:
            self.conv0 = spectral_norm(self.conv0)
            self.conv1 = spectral_norm(self.conv1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv1(torch.relu(self.conv0(torch.relu(x))))


class ImpalaStage(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, use_spectral_norm: bool, use_layer_norm: bool) -> None:
        super().__init__()
        self.stem_conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(1, out_channels) if use_layer_norm else nn.Identity()
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.residual0 = ResidualBlock(out_channels, use_spectral_norm)
        self.residual1 = ResidualBlock(out_channels, use_spectral_norm)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.norm(self.stem_conv(x)))
        return self.residual1(self.residual0(x))


class ImpalaCNN(nn.Module):
    def __init__(
        self,
        in_channels: int,
        width_scale: int,
        use_spectral_norm: bool,
        use_layer_norm: bool,
        adaptive_maxpool_size: int | None,
    ) -> None:
        super().__init__()
        channels = [c * width_scale for c in IMPALA_BASE_CHANNELS]
        stages = []
        for stage_in, stage_out in zip([in_channels, *channels[:-1]], channels, strict=True):
            stages.append(ImpalaStage(stage_in, stage_out, use_spectral_norm, use_layer_norm))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveMaxPool2d(adaptive_maxpool_size) if adaptive_maxpool_size else nn.Identity()
        # Channels-last (NHWC) layout: on CPU the 3x3 max-pool runs ~5x and the convs ~1.4x faster than in NCHW
        # (benchmarks/learner_step.py); the features are flattened back in NCHW order.
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stages(x.contiguous(memory_format=torch.channels_last))
        return torch.flatten(self.pool(torch.relu(x)).contiguous(), start_dim=1)


class ClassicCNN(nn.Module):
    """Linesight's image head: 4 convs (16/32/64/32), LeakyReLU; 64x64 → 32 x 4 x 4 = 512 features."""

    def __init__(self, in_channels: int, adaptive_maxpool_size: int | None) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, 16, kernel_size=4, stride=2),
            nn.LeakyReLU(),
            nn.Conv2d(16, 32, kernel_size=4, stride=2),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, kernel_size=3, stride=2),
            nn.LeakyReLU(),
            nn.Conv2d(64, 32, kernel_size=3, stride=1),
            nn.LeakyReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(adaptive_maxpool_size) if adaptive_maxpool_size else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(self.pool(self.convs(x)), start_dim=1)
