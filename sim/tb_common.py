"""Shared cocotb helpers for the RTL benches (style of alexforencich's verilog-axi benches): clock and
reset helpers, idle/backpressure pause generators, a generic valid/ready source and sink for
non-AXI-named ports, and the config hand-off from pytest (TLMM_CFG, JSON in the environment)."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge


def bench_config() -> dict:
    """The configuration pytest built this simulation for (parameters plus bench options)."""
    return json.loads(os.environ.get("TLMM_CFG", "{}"))


def high(sig) -> bool:
    """1 only for a resolved 1 (X/Z before reset count as 0)."""
    v = sig.value
    return v.is_resolvable and int(v) == 1


def cycle_pause():
    """Idle/backpressure pattern: 3 of every 4 cycles paused, as in verilog-axi's benches."""
    return itertools.cycle([1, 1, 1, 0])


def random_pause(seed: int, p: float = 0.4):
    rng = random.Random(seed)
    while True:
        yield 1 if rng.random() < p else 0


async def start_clock_and_reset(dut, clk: str = "clk", rst_n: str = "rst_n", cycles: int = 4):
    cocotb.start_soon(Clock(getattr(dut, clk), 10, unit="ns").start())
    getattr(dut, rst_n).value = 0
    for _ in range(cycles):
        await RisingEdge(getattr(dut, clk))
    getattr(dut, rst_n).value = 1
    await RisingEdge(getattr(dut, clk))


class StreamSource:
    """Drives a valid/ready/data[/user] port; one beat per cycle unless the pause generator says 1."""

    def __init__(self, clk, valid, ready, data, user=None):
        self.clk, self.valid, self.ready, self.data, self.user = clk, valid, ready, data, user
        self.queue: deque = deque()
        self.pause = None
        self.valid.value = 0
        cocotb.start_soon(self._run())

    def set_pause_generator(self, gen):
        self.pause = gen

    def send(self, data: int, user: int = 0):
        self.queue.append((data, user))

    def empty(self) -> bool:
        return not self.queue

    async def _run(self):
        current = None
        while True:
            await RisingEdge(self.clk)
            if current is not None and high(self.valid) and high(self.ready):
                current = None
            if current is None and self.queue:
                current = self.queue.popleft()
            paused = self.pause is not None and next(self.pause)
            if current is not None and not paused:
                self.data.value = current[0]
                if self.user is not None:
                    self.user.value = current[1]
                self.valid.value = 1
            else:
                self.valid.value = 0


class StreamSink:
    """Takes beats from a valid/ready port; ready is dropped whenever the pause generator says 1.
    Every beat is a dict of the named signals' integer values, sampled at the handshake."""

    def __init__(self, clk, valid, ready, **fields):
        self.clk, self.valid, self.ready, self.fields = clk, valid, ready, fields
        self.beats: list[dict] = []
        self.pause = None
        self.ready.value = 0
        cocotb.start_soon(self._run())

    def set_pause_generator(self, gen):
        self.pause = gen

    async def _run(self):
        while True:
            await RisingEdge(self.clk)
            if high(self.valid) and high(self.ready):
                self.beats.append({k: int(v.value) for k, v in self.fields.items()})
            paused = self.pause is not None and next(self.pause)
            self.ready.value = 0 if paused else 1


def to_signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def pack_words(values, width: int) -> int:
    """Little-endian concatenation: values[i] at bits [i*width +: width] (two's complement)."""
    out = 0
    mask = (1 << width) - 1
    for i, v in enumerate(values):
        out |= (int(v) & mask) << (i * width)
    return out


def unpack_words(word: int, width: int, count: int, signed: bool = True) -> list[int]:
    vals = [(word >> (i * width)) & ((1 << width) - 1) for i in range(count)]
    return [to_signed(v, width) for v in vals] if signed else vals
