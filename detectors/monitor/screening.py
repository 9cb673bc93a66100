"""Screening a column group: one block of vectorised tests decides which checks must run.

Full, all-valid windows of a group are tested together by the group's block (one matrix per
evaluation); a check whose block p-value or data-quality screen says it cannot produce an alert is
not run, and its p-value joins the multiple-testing correction as ``background``
(:mod:`detectors.screen`). Keys with an incident always run. The tests pin this to running every
check on every column (tests/detectors/test_block.py, test_memory_bounds.py).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np

from detectors.block import CategoricalBlock, NumericBlock, RankedNumericBlock
from detectors.column import Column
from detectors.monitor.data import Group, VersionData
from detectors.monitor.findings import Findings
from detectors.screen import screen_quality, screen_tests

Pair = tuple[Any, Any]
"""A windowed detector and the alert kind of its findings."""


class GroupScreen:
    """The blocks of one version's column groups (fixed once frozen) and the screens over them."""

    def __init__(self, data: VersionData) -> None:
        self.data = data
        # Per group: the columns its block was last asked for, and the block (one per group: a
        # group whose members change gets a new block, the old one is dropped).
        self.blocks: dict[Group, tuple[list[Column], NumericBlock | CategoricalBlock]] = {}

    def todo(self, key: Group, cols: list[Column], members: list[Column], pairs: list[Pair],
             feats: list[str | None], found: Findings) -> list[tuple[int, int]]:
        """Run the group's block over ``members``; the (row of ``cols``, detector) pairs left to check."""
        block = self._block(key, members)
        res = _block_tests(block, members)
        cache = block.cache
        if len(cols) < len(members):  # rows of the other members are not meaningful: leave them out
            where = {c.name: i for i, c in enumerate(members)}
            rows = np.array([where[c.name] for c in cols])
            res = {name: v[rows] for name, v in res.items()}
            cache = _subset_cache(block.cache, tuple(c.name for c in cols))
        return self._screen(pairs, cols, feats, res, cache, found)

    def _screen(self, pairs: Sequence[Pair], cols: list[Column], feats: list[str | None], res: dict[str, Any],
                cache: dict[Any, Any], found: Findings) -> list[tuple[int, int]]:
        """(row, detector index) pairs that must run; screened-out p-values go to the background."""
        todo: list[tuple[int, int]] = []
        state, cfg = found.incidents, self.data.cfg
        plan = cache.get("plan")
        if plan is None or plan[0] is not pairs:  # the same pairs at every evaluation: kept with the block
            by_kind: dict[tuple[str, bool], list[int]] = {}
            for d, (det, akind) in enumerate(pairs):
                by_kind.setdefault((akind, det.name in res), []).append(d)
            plan = cache["plan"] = (pairs, [(akind, tested, ds, [pairs[d][0] for d in ds], {})
                                            for (akind, tested), ds in by_kind.items()])
        # Screens of one alert kind run together; the order of p-values within a kind's
        # background does not matter (the correction sorts them).
        for akind, tested, ds, dets, consts in plan[1]:
            must = np.array([(f, akind) in state for f in feats], dtype=bool) if state else None
            if tested:
                run, bg = screen_tests(dets, cols, res, cfg, must, akind != "data_quality", consts)
            else:
                run, ones = screen_quality(dets, cols, res, must, consts)
                bg = [1.0] * ones
            found.background.setdefault(akind, []).extend(bg)
            todo.extend((row, ds[k]) for row, k in run)
        return todo

    def _block(self, key: Group, members: list[Column]) -> NumericBlock | CategoricalBlock:
        """The group's one block, over every column with a usable reference (fixed once frozen)."""
        kept = self.blocks.get(key)
        if kept is not None:
            cols, block = kept
            if len(cols) == len(members) and all(map(operator.is_, cols, members)):
                return block  # the very columns of the last evaluation
            if [c.name for c in cols] == [c.name for c in members]:  # the same columns as other objects (loaded again)
                self.blocks[key] = (members, block)
                return block
        refs = [c.ref for c in members]
        block = (RankedNumericBlock(refs, self.data.spaces.get(key)) if key[1] == "numeric"  # type: ignore[arg-type]
                 else CategoricalBlock(refs))  # type: ignore[arg-type]
        self.blocks[key] = (members, block)
        return block


def _block_tests(block: NumericBlock | CategoricalBlock, members: list[Column]) -> dict[str, Any]:
    values = [c.open_window().values for c in members]
    w = np.array([v.arr for v in values])
    if isinstance(block, RankedNumericBlock):
        if np.count_nonzero(np.isnan(w)):  # a member with missing or bad values: a harmless stand-in, row unused
            w[np.isnan(w)] = 0.0
        counts = np.array([v.count for v in values], dtype=np.int64)
        return block.ranked_tests(w.astype(np.float64, copy=False), counts)
    return block.tests(w.astype(np.int64))


def _subset_cache(cache: dict[Any, Any], names: tuple[str, ...]) -> dict[Any, Any]:
    """Screening constants of one subset of a block's rows (a few subsets at most are kept)."""
    subsets: dict[tuple[str, ...], dict[Any, Any]] = cache.setdefault("subsets", {})
    if names not in subsets and len(subsets) >= 4:
        subsets.clear()
    return subsets.setdefault(names, {})
