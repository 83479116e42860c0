"""The job channel between the live process and the shadow worker: order, bound, stop and EOF."""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing

from shadowtap.proxy.shadow.handoff import JobSender, job_channel, receive_jobs
from shadowtap.proxy.shadow.planning import ShadowJob


def job(index: int, body: bytes = b'{"model":"m","messages":[]}') -> ShadowJob:
    return ShadowJob(f"ex-{index}", 1_700_000_000.5 + index, "chat.completions", body, ["a", "b"], index % 2 == 0)


async def collect(worker_end, taken) -> list[ShadowJob]:
    return [received async for received in receive_jobs(worker_end, taken)]


def test_jobs_arrive_whole_and_in_order_then_stop_ends_the_stream():
    async def scenario():
        live_end, worker_end, taken = job_channel(multiprocessing.get_context("spawn"))
        sender = JobSender(live_end, capacity=100, taken=taken)
        await sender.connect()
        big = b'{"messages":[{"role":"user","content":"' + b"x" * 300_000 + b'"}]}'  # more than one socket buffer
        sent = [job(0), job(1, big), job(2)]
        assert [sender.send(each) for each in sent] == [None, None, None]
        sender.send_stop()
        received = await asyncio.wait_for(collect(worker_end, taken), 10)
        sender.close()
        return sent, received, taken.value

    sent, received, taken = asyncio.run(scenario())
    assert received == sent
    assert taken == 3


def test_jobs_beyond_capacity_are_refused_at_once_and_depth_counts_what_the_worker_has_not_taken():
    taken = multiprocessing.get_context("spawn").RawValue(ctypes.c_longlong, 0)
    live_end, worker_end, _ = job_channel(multiprocessing.get_context("spawn"))
    sender = JobSender(live_end, capacity=3, taken=taken)
    results = [sender.send(job(index)) for index in range(5)]  # not connected yet: nothing reads
    assert results == [None, None, None, "saturated", "saturated"]
    assert sender.depth() == 3
    taken.value = 2  # the worker took two
    assert sender.depth() == 1 and sender.send(job(5)) is None
    sender.close()
    worker_end.close()


def test_jobs_offered_before_the_loop_runs_go_out_when_the_channel_connects():
    async def scenario():
        live_end, worker_end, taken = job_channel(multiprocessing.get_context("spawn"))
        sender = JobSender(live_end, capacity=10, taken=taken)
        sender.send(job(7))
        await sender.connect()
        sender.send_stop()
        return await asyncio.wait_for(collect(worker_end, taken), 10), sender

    received, sender = asyncio.run(scenario())
    sender.close()
    assert [each.exchange_id for each in received] == ["ex-7"]


def test_the_worker_stops_reading_when_the_live_process_closes_its_end():
    async def scenario():
        live_end, worker_end, taken = job_channel(multiprocessing.get_context("spawn"))
        sender = JobSender(live_end, capacity=10, taken=taken)
        await sender.connect()
        sender.send(job(1))
        await asyncio.sleep(0.05)  # let the delayed write go out
        sender.close()  # as a killed live process would: no stop frame
        return await asyncio.wait_for(collect(worker_end, taken), 10)

    assert [each.exchange_id for each in asyncio.run(scenario())] == ["ex-1"]


def test_once_the_worker_is_gone_jobs_are_refused_as_worker_unavailable():
    async def scenario():
        live_end, worker_end, taken = job_channel(multiprocessing.get_context("spawn"))
        sender = JobSender(live_end, capacity=10, taken=taken)
        await sender.connect()
        worker_end.close()  # as a worker killed outright would
        for _ in range(100):
            if sender.send(job(1)) == "worker_unavailable":
                return True
            await asyncio.sleep(0.01)
        return False

    assert asyncio.run(scenario())
