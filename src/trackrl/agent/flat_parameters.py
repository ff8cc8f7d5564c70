"""A network's parameters as views into one contiguous tensor per optimiser group, and their gradients likewise.

Why: at the float configs' sizes (~75k weights in ~26 tensors, batch 64, one CPU core) the per-tensor loops of
gradient clipping, AdamW (its step counters and bookkeeping) and the Polyak target update cost more than their
arithmetic. Laid out flat, each is one operation per group. The maths does not change: AdamW is elementwise, and
the L2 norm of the gradient is the same over the flat tensors as over the parameters.

    flat = FlatParameters.of(groups)       # parameters become views of flat.tensors[g] (values and layout kept)
    flat.zero_grad(); loss.backward()      # gradients accumulate into flat.gradient
    flat.clip_grad_norm_(max_norm)         # one norm over all of them
    torch.optim.AdamW([{"params": [flat.tensors[g]], ...} ...])

Checkpoints keep the format of an optimiser over the parameters themselves (one state entry per parameter):
``per_parameter_state`` / ``flat_state`` convert between the two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn


def is_dense(tensor: Tensor) -> bool:
    """Its elements fill one block of memory without gaps or overlaps (contiguous, channels-last, or permuted)."""
    sizes_and_strides = sorted(
        (stride, size) for size, stride in zip(tensor.shape, tensor.stride(), strict=True) if size > 1
    )
    expected = 1
    for stride, size in sizes_and_strides:
        if stride != expected:
            return False
        expected *= size
    return True


def view_like(flat: Tensor, offset: int, like: Tensor) -> Tensor:
    """The slice of ``flat`` at ``offset`` seen with ``like``'s shape and strides (channels-last convs stay so)."""
    return flat[offset : offset + like.numel()].as_strided(like.shape, like.stride())


@dataclass
class FlatParameters:
    values: Tensor  # every parameter, group after group, in one contiguous tensor
    gradient: Tensor | None  # their gradients, laid out alike (None without gradients)
    tensors: list[nn.Parameter]  # one leaf slice of ``values`` per group: what the optimiser steps
    parameters: list[list[nn.Parameter]]  # the network's parameters per group, in flat order
    gradients: list[list[Tensor]]  # each parameter's .grad: a view of ``gradient``

    @classmethod
    def of(cls, groups: list[list[nn.Parameter]], with_gradients: bool = True) -> FlatParameters:
        parameters = [p for group in groups for p in group]
        if not all(is_dense(p) for p in parameters):
            raise ValueError("FlatParameters needs dense parameters (each one block of memory)")
        first = parameters[0]
        values = torch.empty(sum(p.numel() for p in parameters), dtype=first.dtype, device=first.device)
        gradient = torch.zeros_like(values) if with_gradients else None
        tensors, all_gradients, offset = [], [], 0
        for group in groups:
            start, views = offset, []
            for parameter in group:
                view = view_like(values, offset, parameter)
                view.copy_(parameter.detach())
                parameter.data = view  # same Parameter object: modules, state dicts and hooks are unaffected
                if gradient is not None:
                    views.append(view_like(gradient, offset, parameter))
                offset += parameter.numel()
            leaf = nn.Parameter(values[start:offset], requires_grad=with_gradients)
            leaf.grad = None if gradient is None else gradient[start:offset]
            tensors.append(leaf)
            all_gradients.append(views)
        flat_parameters = cls(values, gradient, tensors, [list(group) for group in groups], all_gradients)
        if with_gradients:
            flat_parameters.attach_gradients()
        return flat_parameters

    def attach_gradients(self) -> None:
        """Point every parameter's .grad at its view again (a ``zero_grad(set_to_none=True)`` elsewhere, e.g. on
        the network, drops them, and autograd would then write fresh tensors the optimiser never sees)."""
        for parameters, gradients in zip(self.parameters, self.gradients, strict=True):
            for parameter, gradient in zip(parameters, gradients, strict=True):
                if parameter.grad is not gradient:
                    parameter.grad = gradient

    def zero_grad(self) -> None:
        self.attach_gradients()
        self.gradient.zero_()

    def clip_grad_norm_(self, max_norm: float) -> Tensor:
        """torch.nn.utils.clip_grad_norm_ over the one flat gradient: g ← g · min(1, max_norm / (‖g‖₂ + 1e-6));
        returns ‖g‖₂ before clipping."""
        norm = torch.linalg.vector_norm(self.gradient)
        self.gradient.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm

    def per_parameter_state(self, optimizer_state: dict[str, Any]) -> dict[str, Any]:
        """A flat optimiser's state dict as an optimiser over the parameters would write it: entries numbered
        0, 1, ... through the groups in order, moments in each parameter's shape."""
        state: dict[int, dict[str, Any]] = {}
        param_groups, index = [], 0
        for group, parameters in zip(optimizer_state["param_groups"], self.parameters, strict=True):
            moments = optimizer_state["state"].get(group["params"][0], {})
            numbers, offset = [], 0
            for parameter in parameters:
                if moments:
                    state[index] = {
                        key: value.clone() if key == "step" else view_like(value, offset, parameter).clone()
                        for key, value in moments.items()
                    }
                numbers.append(index)
                index += 1
                offset += parameter.numel()
            param_groups.append({**group, "params": numbers})
        return {"state": state, "param_groups": param_groups}

    def flat_state(self, per_parameter: dict[str, Any]) -> dict[str, Any]:
        """The inverse of ``per_parameter_state`` (the groups and moment shapes already checked by the caller)."""
        state: dict[int, dict[str, Any]] = {}
        param_groups = []
        for g, (group, parameters) in enumerate(zip(per_parameter["param_groups"], self.parameters, strict=True)):
            entries = [per_parameter["state"].get(number, {}) for number in group["params"]]
            if entries and entries[0]:
                flat = self.tensors[g]
                moments: dict[str, Any] = {"step": torch.as_tensor(entries[0]["step"]).clone()}
                for key in entries[0]:
                    if key != "step":
                        moments[key] = torch.empty_like(flat, requires_grad=False)
                        offset = 0
                        for parameter, entry in zip(parameters, entries, strict=True):
                            view_like(moments[key], offset, parameter).copy_(entry[key])
                            offset += parameter.numel()
                state[g] = moments
            param_groups.append({**group, "params": [g]})
        return {"state": state, "param_groups": param_groups}
