"""The cluster-wide limit of API requests (``on_ray.run.RequestSlots``), as its actor runs it:
at most N requests in flight, a released slot goes to a waiting request, a slot whose holder died
comes back when its lease ends. Plain asyncio here; on a cluster it is one Ray actor."""

from __future__ import annotations

import asyncio

from medfm_robust_plugin.on_ray.run import RequestSlots


def test_at_most_n_requests_are_in_flight_and_a_release_lets_the_next_one_go():
    async def scenario():
        slots = RequestSlots(2)
        first = await slots.acquire(60)
        await slots.acquire(60)
        waiting = asyncio.create_task(slots.acquire(60))
        await asyncio.sleep(0.05)
        assert not waiting.done() and await slots.in_flight() == 2
        await slots.release(first)
        await asyncio.wait_for(waiting, timeout=1)
        assert await slots.in_flight() == 2

    asyncio.run(scenario())


def test_a_slot_whose_holder_died_comes_back_after_its_lease():
    async def scenario():
        slots = RequestSlots(1)
        await slots.acquire(0.2)  # never released: its actor was killed
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(slots.acquire(60), timeout=5)
        assert asyncio.get_running_loop().time() - started >= 0.15

    asyncio.run(scenario())
