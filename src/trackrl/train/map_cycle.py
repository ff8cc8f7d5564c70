"""The map cycle: entries (map, is_exploration, fill_buffer, repeat) expanded into a repeating list of race slots.

Linesight's typical cycle is 64 exploration races then 1 eval race on the same map. Exploration races act with
epsilon / Boltzmann / noise; eval races are greedy. A map that fills the buffer is "trained", one that does not is
"blind" (trackrl.train.tb.map_status); races on a blind map are still logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from trackrl.config.schema import MapCycleConfig


@dataclass(frozen=True)
class RaceSlot:
    map_name: str
    road_width_m: float | None
    is_exploration: bool
    fill_buffer: bool


def expand_map_cycle(map_cycle: MapCycleConfig) -> list[RaceSlot]:
    slots: list[RaceSlot] = []
    for entry in map_cycle.entries:
        slot = RaceSlot(entry.map, entry.road_width_m, entry.is_exploration, entry.fill_buffer)
        slots.extend([slot] * entry.repeat)
    return slots


class MapCycle:
    """Hands out race slots in cycle order; ``position`` is saved so that a resumed run continues the cycle."""

    def __init__(self, map_cycle: MapCycleConfig, position: int = 0) -> None:
        self.slots = expand_map_cycle(map_cycle)
        self.position = position % len(self.slots)

    def next_slot(self) -> RaceSlot:
        slot = self.slots[self.position]
        self.position = (self.position + 1) % len(self.slots)
        return slot

    def map_keys(self) -> list[tuple[str, float | None]]:
        """The distinct (map, road width) pairs, in first-appearance order: one environment per pair."""
        return list(dict.fromkeys((slot.map_name, slot.road_width_m) for slot in self.slots))
