"""The offline symbolic proposer: textbook law families plus mutation and crossover.

``OfflineProposer`` is what a campaign uses when no language model is
configured; the other names are its parts, public for tests and for other
proposers that want the same building blocks.
"""

from sld.discovery.proposers.offline.library import LibraryEntry, build_library
from sld.discovery.proposers.offline.mutations import DEFAULT_WEIGHTS, Child, Mutator
from sld.discovery.proposers.offline.names import NameAllocator
from sld.discovery.proposers.offline.profile import FeatureInfo, TaskProfile, profile_task
from sld.discovery.proposers.offline.proposer import OfflineProposer, OfflineSettings

__all__ = [
    "Child", "DEFAULT_WEIGHTS", "FeatureInfo", "LibraryEntry", "Mutator", "NameAllocator",
    "OfflineProposer", "OfflineSettings", "TaskProfile", "build_library", "profile_task",
]
