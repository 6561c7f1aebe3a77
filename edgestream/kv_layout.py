"""The attention unit's INT8 KV cache in DDR (docs/units.md "KV cache in DDR"): where each position's
key and value slots live in the KV region, for a bitstream with KVP KV ports (HW_UNITS [7:4]).

Per (layer l, KV head g) a block: the K part, then the V part. A K slot is the scale beat (u32 bits of
dk, dv, the absolute position, 0) and the D int8 of the key in DB = D/16 beats; a V slot the D int8 of
the value. With KVP ports a K slot is padded to KW = ceil((DB+1)/KVP) words of KVP beats and a V slot
to VW = ceil(DB/KVP) words, and beat b of a slot lives in stripe b % KVP (stripe p of the K part holds
word b // KVP of every slot in turn, P*KW beats; the V part likewise), so each port reads one
contiguous stripe. KVP = 1 is the one-port layout: contiguous slots of DB+1 and DB beats.
The host only sizes the region (bytes_for), and reads and rewrites it for the KV-window shift
(unpack, pack); the device writes every entry it reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BEAT = 16


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class KvLayout:
    layers: int
    kv_heads: int
    d: int
    kvp: int = 1

    @property
    def db(self) -> int:
        return self.d // BEAT

    @property
    def kw(self) -> int:
        return _cdiv(self.db + 1, self.kvp)

    @property
    def vw(self) -> int:
        return _cdiv(self.db, self.kvp)

    @property
    def slot_bytes(self) -> int:
        """Bytes of one position's K and V slots in one (layer, KV head) block, padding included."""
        return (self.kw + self.vw) * self.kvp * BEAT

    def bytes_for(self, positions: int) -> int:
        """The region a host allocates for `positions` slots."""
        return self.layers * self.kv_heads * self.slot_bytes * positions

    def slots(self, kv_size: int) -> int:
        """P: the slots a region of `kv_size` bytes holds (what the unit computes from KV_SIZE)."""
        return kv_size // (self.layers * self.kv_heads * self.slot_bytes)

    def unpack(self, raw: bytes, slots: int):
        """The region's bytes -> (kq, dk, vq, dv, pos): kq/vq int8 [layers, KVH, P, D], dk/dv float32 and
        pos uint32 [layers, KVH, P]."""
        L, H, P, v, k = self.layers, self.kv_heads, slots, self.kvp, self.kw
        blk = np.frombuffer(raw, np.uint8)[:L * H * P * self.slot_bytes].reshape(L, H, -1)
        ks = blk[..., :P * k * v * BEAT].reshape(L, H, v, P, k, BEAT)
        ks = ks.transpose(0, 1, 3, 4, 2, 5).reshape(L, H, P, k * v, BEAT)  # beat w*KVP + p of each slot
        vs = blk[..., P * k * v * BEAT:].reshape(L, H, v, P, self.vw, BEAT)
        vs = vs.transpose(0, 1, 3, 4, 2, 5).reshape(L, H, P, self.vw * v, BEAT)
        head = np.ascontiguousarray(ks[..., 0, :]).view("<u4")
        kq = np.ascontiguousarray(ks[..., 1:1 + self.db, :]).view(np.int8).reshape(L, H, P, self.d)
        vq = np.ascontiguousarray(vs[..., :self.db, :]).view(np.int8).reshape(L, H, P, self.d)
        return kq, head[..., 0].view("<f4").copy(), vq, head[..., 1].view("<f4").copy(), head[..., 2].copy()

    def pack(self, kq, dk, vq, dv, pos) -> bytes:
        """unpack's inverse (padding beats zero, as the unit writes them)."""
        L, H, P, _ = kq.shape
        v, k = self.kvp, self.kw
        ks = np.zeros((L, H, P, k * v, BEAT), np.uint8)
        ks[..., 0, :] = np.stack([np.asarray(dk, "<f4").view("<u4"), np.asarray(dv, "<f4").view("<u4"),
                                  np.asarray(pos, "<u4"), np.zeros(np.shape(pos), "<u4")],
                                 axis=-1).view(np.uint8).reshape(L, H, P, BEAT)
        ks[..., 1:1 + self.db, :] = np.asarray(kq).view(np.uint8).reshape(L, H, P, self.db, BEAT)
        vs = np.zeros((L, H, P, self.vw * v, BEAT), np.uint8)
        vs[..., :self.db, :] = np.asarray(vq).view(np.uint8).reshape(L, H, P, self.db, BEAT)
        ks = ks.reshape(L, H, P, k, v, BEAT).transpose(0, 1, 4, 2, 3, 5).reshape(L, H, -1)
        vs = vs.reshape(L, H, P, self.vw, v, BEAT).transpose(0, 1, 4, 2, 3, 5).reshape(L, H, -1)
        return np.concatenate([ks, vs], axis=-1).tobytes()
