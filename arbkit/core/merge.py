"""Merging already-sorted instrument streams into the loop's event order, and a cheap check of
each stream on the way (catalog files were validated when written; this catches a file
changed since, at almost no cost).

Event order: receive time, then instrument index, then row order within the stream (BRIEF
§3: venue streams are already sorted, so merge them instead of sorting everything).
"""

from __future__ import annotations

import numpy as np

from arbkit.core.jit import njit, njit_inline

# check_stream codes
CHK_OK = 0
CHK_BACKWARDS = 1
CHK_PRICE = 2
CHK_SIZE = 3


@njit
def check_stream(ts, bid_px, bid_qty, ask_px, ask_qty):
    """(code, row) of the first fault of one stream: time going backwards, a best price not
    finite and > 0, or a size not finite and >= 0. (CHK_OK, -1) when clean."""
    for k in range(ts.shape[0]):
        if k > 0 and ts[k] < ts[k - 1]:
            return CHK_BACKWARDS, k
        b = bid_px[k]
        a = ask_px[k]
        if not (b > 0.0 and a > 0.0 and b < np.inf and a < np.inf):
            return CHK_PRICE, k
        bq = bid_qty[k]
        aq = ask_qty[k]
        if not (bq >= 0.0 and aq >= 0.0 and bq < np.inf and aq < np.inf):
            return CHK_SIZE, k
    return CHK_OK, -1


@njit_inline
def _less(ts, key_a, key_b, pos_a, pos_b) -> bool:
    ta = ts[pos_a]
    tb = ts[pos_b]
    return ta < tb or (ta == tb and key_a < key_b)


@njit
def _sift_up(heap, i, ts, keys, pos) -> None:
    while i > 0:
        parent = (i - 1) // 2
        a = heap[i]
        b = heap[parent]
        if _less(ts, keys[a], keys[b], pos[a], pos[b]):
            heap[i] = b
            heap[parent] = a
            i = parent
        else:
            return


@njit
def _sift_down(heap, size, ts, keys, pos) -> None:
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            return
        best = left
        right = left + 1
        if right < size and _less(ts, keys[heap[right]], keys[heap[left]],
                                  pos[heap[right]], pos[heap[left]]):
            best = right
        a = heap[best]
        b = heap[i]
        if _less(ts, keys[a], keys[b], pos[a], pos[b]):
            heap[i] = a
            heap[best] = b
            i = best
        else:
            return


@njit
def merge_fill(ev, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, pos, ends, keys,
               heap, order, kind) -> None:
    """Merge the streams laid end to end in the column arrays (``[pos[j], ends[j])`` is stream
    j, ``keys[j]`` its instrument index and tie-break rank) and write each event in merged
    order into ``ev``, recording its source position in ``order`` (for the depth gather).

    Fused so the 64-byte records are written in one sequential pass. Two streams, the common
    route, take a branch-only path; more use a binary heap (O(n log k)).
    """
    k = pos.shape[0]
    n = 0
    if k == 2:
        # branch-free selection: which stream is next is a coin flip for the branch predictor
        a, b = pos[0], pos[1]
        ea, eb = ends[0], ends[1]
        a_first = 1 if keys[0] < keys[1] else 0
        while a < ea and b < eb:
            ta = ts_recv[a]
            tb = ts_recv[b]
            take_a = (ta < tb) | ((ta == tb) & (a_first == 1))
            j = a if take_a else b
            _write(ev, n, j, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, kind)
            order[n] = j
            n += 1
            step = 1 if take_a else 0
            a += step
            b += 1 - step
        while a < ea:
            _write(ev, n, a, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, kind)
            order[n] = a
            n += 1
            a += 1
        while b < eb:
            _write(ev, n, b, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, kind)
            order[n] = b
            n += 1
            b += 1
        return
    size = 0
    for s in range(k):
        if pos[s] < ends[s]:
            heap[size] = s
            size += 1
            _sift_up(heap, size - 1, ts_recv, keys, pos)
    while size > 0:
        s = heap[0]
        j = pos[s]
        _write(ev, n, j, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, kind)
        order[n] = j
        n += 1
        pos[s] += 1
        if pos[s] >= ends[s]:
            size -= 1
            heap[0] = heap[size]
        _sift_down(heap, size, ts_recv, keys, pos)


@njit_inline
def _write(ev, n, j, ts_recv, ts_exch, inst, bid_px, bid_qty, ask_px, ask_qty, kind) -> None:
    e = ev[n]
    e["ts_recv"] = ts_recv[j]
    e["ts_exch"] = ts_exch[j]
    e["inst"] = inst[j]
    e["kind"] = kind
    e["bid_px"] = bid_px[j]
    e["bid_qty"] = bid_qty[j]
    e["ask_px"] = ask_px[j]
    e["ask_qty"] = ask_qty[j]
    e["depth_row"] = -1
