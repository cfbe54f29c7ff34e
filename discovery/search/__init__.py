"""The search loop: a campaign's settings, its population, the worker pool that
fits candidates, the selection of the final law, and its scoring on test."""
