"""IQN agent with the BTR components as switches: networks, losses, learner step and acting policy."""

from trackrl.agent.learner import Learner, LearnerStateError, LearnerStepResult
from trackrl.agent.networks import IQNNetwork, NetworkConfigError, build_network
from trackrl.agent.noisy import NoisyLinear
from trackrl.agent.policy import select_actions

__all__ = [
    "IQNNetwork",
    "Learner",
    "LearnerStateError",
    "LearnerStepResult",
    "NetworkConfigError",
    "NoisyLinear",
    "build_network",
    "select_actions",
]
