"""The map cycle: entries (map, is_exploration, fill_buffer, repeat) expanded into a repeating list of race slots.

Linesight's typical cycle is 64 exploration races then 1 eval race on the same map. Exploration races act with
epsilon / Boltzmann / noise; eval races are greedy. A map that fills the buffer is "trained", one that does not is
"blind" (trackrl.train.tb.map_status); races on a blind map are still logged.

Map key: the name a map's stats, TensorBoard tags and best-run folders go by. It is the map name, unless the cycle
runs that map at more than one road width: then each width is a map of its own, ``<map>_w<width>m`` (e.g.
``easy_w12m``; an entry without ``road_width_m`` is named after the track's own width), so that the times of a narrow
and a wide road never mix in one tag, one best time or one best-run folder.
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
    map_key: str = ""  # see the module docstring; expand_map_cycle fills it in
    game_map_path: str | None = None  # game backend: the path for TMInterface's `map` command (None: `map <map>`)


def map_keys_of_entries(map_cycle: MapCycleConfig) -> list[str]:
    """The map key of each entry: the map name, or ``<map>_w<width>m`` when the map runs at several widths."""
    widths: dict[str, set[float | None]] = {}
    for entry in map_cycle.entries:
        widths.setdefault(entry.map, set()).add(entry.road_width_m)
    keys = []
    for entry in map_cycle.entries:
        if len(widths[entry.map]) == 1:
            keys.append(entry.map)
            continue
        width_m = entry.road_width_m
        if width_m is None:
            from trackrl.sim.track import load_track  # the track's own width (built-in spec, or 16 m for a file)

            width_m = load_track(entry.map).road_width_m
        keys.append(f"{entry.map}_w{float(width_m):g}m")
    return keys


def expand_map_cycle(map_cycle: MapCycleConfig) -> list[RaceSlot]:
    slots: list[RaceSlot] = []
    for entry, key in zip(map_cycle.entries, map_keys_of_entries(map_cycle), strict=True):
        slot = RaceSlot(
            entry.map, entry.road_width_m, entry.is_exploration, entry.fill_buffer, key, entry.game_map_path
        )
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

    def tracks(self) -> list[tuple[str, float | None]]:
        """The distinct (map, road width) pairs, in first-appearance order: one environment per pair."""
        return list(dict.fromkeys((slot.map_name, slot.road_width_m) for slot in self.slots))

    def map_key_tracks(self) -> dict[str, tuple[str, float | None]]:
        """map key -> (map, road width) it is raced on."""
        return {slot.map_key: (slot.map_name, slot.road_width_m) for slot in self.slots}
