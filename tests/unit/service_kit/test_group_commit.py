"""The group commit: what is ready goes together, a lone item goes at once, and one
bad item fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from service_kit.group_commit import GroupCommit


class Doubler:
    """A ``run_batch`` that doubles numbers and refuses negative ones (the whole
    batch raises, as a failing statement would); it can be held on a gate."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: Sequence[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        await self.gate.wait()
        if any(item < 0 for item in items):
            raise ValueError(f"negative in {list(items)}")
        return [ValueError("seven") if item == 7 else item * 2 for item in items]


async def hold_a_batch(group: GroupCommit[int, int], run: Doubler) -> asyncio.Task[int]:
    """Submit 0 and hold its batch on the gate: what is submitted next waits for
    the next batch (release with ``run.gate.set()``)."""
    run.gate.clear()
    held = asyncio.create_task(group.submit(0))
    while not run.batches:
        await asyncio.sleep(0)
    return held


async def behind_a_held_batch(
    group: GroupCommit[int, int], run: Doubler, items: tuple[int, ...]
) -> list[int | BaseException]:
    """Submit ``items`` while a batch of 0 is held, then release it: the held
    one's result, then each item's (its exception where it failed)."""
    held = await hold_a_batch(group, run)
    rest = [asyncio.create_task(group.submit(item)) for item in items]
    await asyncio.sleep(0)
    run.gate.set()
    return await asyncio.wait_for(asyncio.gather(held, *rest, return_exceptions=True), 5)


async def test_a_lone_item_goes_at_once_in_a_batch_of_its_own() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1) as group:
        assert await asyncio.wait_for(group.submit(21), 5) == 42
    assert run.batches == [[21]]


async def test_items_that_arrive_while_a_batch_runs_share_the_next_one() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1, max_batch=3) as group:
        assert await behind_a_held_batch(group, run, (1, 2, 3, 4)) == [0, 2, 4, 6, 8]
    assert run.batches == [[0], [1, 2, 3], [4]]


async def test_an_item_refused_alone_leaves_the_others_their_results() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1) as group:
        held = await hold_a_batch(group, run)
        eight, seven = asyncio.create_task(group.submit(8)), asyncio.create_task(group.submit(7))
        await asyncio.sleep(0)
        run.gate.set()
        assert await asyncio.wait_for(held, 5) == 0
        assert await asyncio.wait_for(eight, 5) == 16
        with pytest.raises(ValueError, match="seven"):
            await asyncio.wait_for(seven, 5)
    assert run.batches == [[0], [8, 7]]


async def test_a_failing_batch_is_run_again_one_by_one_so_only_the_bad_item_fails() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1) as group:
        _, one, bad, two = await behind_a_held_batch(group, run, (1, -1, 2))
    assert (one, two) == (2, 4)
    assert isinstance(bad, ValueError)
    assert run.batches == [[0], [1, -1, 2], [1], [-1], [2]]


async def test_a_shared_failure_is_everyones_at_once_and_not_retried() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1, shared_failure=lambda _: True) as group:
        _, *results = await behind_a_held_batch(group, run, (1, -1, 2))
    assert all(isinstance(result, ValueError) for result in results)
    assert run.batches == [[0], [1, -1, 2]]


async def test_closing_finishes_what_was_submitted_then_refuses_more() -> None:
    run = Doubler()
    group = GroupCommit(run, runners=2)
    async with group:
        run.gate.clear()
        submitted = [asyncio.create_task(group.submit(n)) for n in range(5)]
        await asyncio.sleep(0)
        closing = asyncio.create_task(group.close())
        await asyncio.sleep(0)
        assert not closing.done()
        run.gate.set()
        await asyncio.wait_for(closing, 5)
        assert [task.result() for task in submitted] == [0, 2, 4, 6, 8]
    with pytest.raises(RuntimeError, match="not running"):
        await group.submit(1)


async def test_a_submitter_that_gave_up_does_not_disturb_the_batch() -> None:
    run = Doubler()
    async with GroupCommit(run, runners=1) as group:
        held = await hold_a_batch(group, run)
        gone, kept = asyncio.create_task(group.submit(1)), asyncio.create_task(group.submit(2))
        await asyncio.sleep(0)
        gone.cancel()
        run.gate.set()
        assert await asyncio.wait_for(kept, 5) == 4
        await held
    assert gone.cancelled()


def test_sizes_are_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        GroupCommit(Doubler(), max_batch=0)
