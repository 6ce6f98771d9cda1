"""AdaptiveBatcher: no wait when the arm is idle, batches grow while it is busy, failures reach every caller."""

from __future__ import annotations

import asyncio

import pytest

from monovec.serving.batcher import AdaptiveBatcher


class FakeArm:
    """Records each call's batch; `gate` holds a call open until the test releases it."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = fail
        self.open = 0
        self.max_open = 0

    async def send(self, items: list[int]) -> list[int]:
        self.calls.append(list(items))
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.gate.wait()
            if self.fail:
                raise RuntimeError("replica lost")
            return [x * 10 for x in items]
        finally:
            self.open -= 1


def test_a_lone_request_goes_at_once_and_gets_its_own_result() -> None:
    async def main() -> None:
        arm = FakeArm()
        b = AdaptiveBatcher(arm.send, max_batch_size=8)
        assert await b.submit(3) == 30
        assert await b.submit(4) == 40
        assert arm.calls == [[3], [4]]

    asyncio.run(main())


def test_requests_arriving_while_busy_form_the_next_batch() -> None:
    async def main() -> None:
        arm = FakeArm()
        arm.gate.clear()
        b = AdaptiveBatcher(arm.send, max_batch_size=4, max_in_flight=1)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0)
        rest = [asyncio.ensure_future(b.submit(i)) for i in range(1, 7)]
        await asyncio.sleep(0)
        assert arm.calls == [[0]]  # the others wait for the single slot
        arm.gate.set()
        assert await first == 0
        assert [await f for f in rest] == [10, 20, 30, 40, 50, 60]
        assert arm.calls == [[0], [1, 2, 3, 4], [5, 6]]  # capped at max_batch_size, in order
        assert arm.max_open == 1
        assert b.mean_batch_size == pytest.approx(7 / 3)

    asyncio.run(main())


def test_in_flight_limit_is_the_number_of_slots() -> None:
    async def main() -> None:
        arm = FakeArm()
        arm.gate.clear()
        b = AdaptiveBatcher(arm.send, max_batch_size=2, max_in_flight=2)
        futs = [asyncio.ensure_future(b.submit(i)) for i in range(6)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert arm.open == 2
        arm.gate.set()
        assert [await f for f in futs] == [0, 10, 20, 30, 40, 50]
        assert arm.max_open == 2
        assert sorted(x for call in arm.calls for x in call) == list(range(6))

    asyncio.run(main())


def test_a_failed_call_fails_every_caller_in_it_and_the_batcher_keeps_working() -> None:
    async def main() -> None:
        arm = FakeArm(fail=True)
        arm.gate.clear()
        b = AdaptiveBatcher(arm.send, max_batch_size=8)
        futs = [asyncio.ensure_future(b.submit(i)) for i in range(3)]
        await asyncio.sleep(0)
        arm.gate.set()
        results = await asyncio.gather(*futs, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)
        arm.fail = False
        assert await b.submit(5) == 50

    asyncio.run(main())


def test_a_wrong_number_of_results_is_an_error_not_a_shifted_answer() -> None:
    gate = asyncio.Event()

    async def drops_one(items: list[int]) -> list[int]:
        await gate.wait()
        return items if len(items) == 1 else items[:-1]

    async def main() -> None:
        b = AdaptiveBatcher(drops_one, max_batch_size=8, max_in_flight=1)
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0)
        pair = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]  # queue behind the first call
        gate.set()
        assert await first == 0
        results = await asyncio.gather(*pair, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) and "2 items came back with 1" in str(r) for r in results)

    asyncio.run(main())


def test_bad_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        AdaptiveBatcher(FakeArm().send, max_batch_size=0)
