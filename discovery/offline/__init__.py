"""The offline symbolic proposer: textbook law families plus mutation and crossover.

``OfflineProposer`` is what a campaign uses when no language model is
configured; the other names are its parts, public for tests and for other
proposers that want the same building blocks.
"""

from discovery.offline.library import LibraryEntry, build_library
from discovery.offline.mutations import DEFAULT_WEIGHTS, Child, Mutator
from discovery.offline.names import NameAllocator
from discovery.offline.profile import FeatureInfo, TaskProfile, profile_task
from discovery.offline.proposer import OfflineProposer, OfflineSettings

__all__ = [
    "Child", "DEFAULT_WEIGHTS", "FeatureInfo", "LibraryEntry", "Mutator", "NameAllocator",
    "OfflineProposer", "OfflineSettings", "TaskProfile", "build_library", "profile_task",
]
