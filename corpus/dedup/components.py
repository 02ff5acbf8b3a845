"""Connected components by rounds of min-label propagation with pointer jumping.

A label is ``(key, h, gid)``: the priority key, id hash and global id of the best document seen so far, so
the converged label of a component is its survivor. Each round, a node takes the minimum of its own label,
its neighbours' labels, and the labels of those labels (pointer jumping, so long chains converge in far
fewer rounds than their length). A round only needs the node's own edges plus label look-ups, so each partition (shard)
runs independently and no process holds all edges.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

LABEL_DTYPE = np.dtype([("key", "<u8"), ("h", "<u8"), ("gid", "<u8")])
NODE_LABEL_DTYPE = np.dtype([("node", "<u8"), ("key", "<u8"), ("h", "<u8"), ("gid", "<u8")])

Lookup = Callable[[np.ndarray], np.ndarray]  # gids -> LABEL_DTYPE labels


def best_per_node(nodes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The lexicographically smallest label per node, as a NODE_LABEL_DTYPE array sorted by node."""
    order = np.lexsort((labels["gid"], labels["h"], labels["key"], nodes))
    nodes, labels = nodes[order], labels[order]
    first = np.r_[True, nodes[1:] != nodes[:-1]] if len(nodes) else np.empty(0, bool)
    out = np.empty(int(first.sum()), dtype=NODE_LABEL_DTYPE)
    out["node"] = nodes[first]
    for f in ("key", "h", "gid"):
        out[f] = labels[f][first]
    return out


def propagation_round(src: np.ndarray, dst: np.ndarray, lookup: Lookup) -> tuple[np.ndarray, int]:
    """One round for the nodes ``src`` (edges ``src -> dst``); returns new labels and how many changed."""
    nodes = np.unique(src)
    old = lookup(nodes)
    neigh = lookup(dst)
    cand_nodes = np.concatenate([nodes, src, nodes, src])
    cand = np.concatenate([old, neigh, lookup(old["gid"]), lookup(neigh["gid"])])
    new = best_per_node(cand_nodes, cand)
    changed = int(np.count_nonzero(new["gid"] != old["gid"]))
    return new, changed


def propagation_round_parts(src: np.ndarray, dst: np.ndarray, lookup: Lookup,
                            max_edges: int = 1 << 18) -> tuple[np.ndarray, int]:
    """:func:`propagation_round` over node groups of about ``max_edges`` edges each (nodes by ``gid mod
    parts``; a node's edges stay together), so a round holds the candidates of one group (~300 bytes per edge)
    instead of all; the same labels and count as one call."""
    parts = -(-len(src) // max_edges)
    if parts <= 1:
        return propagation_round(src, dst, lookup)
    group = (src % np.uint64(parts)).astype(np.int64)
    out, changed = [], 0
    for g in range(parts):
        sel = np.flatnonzero(group == g)
        labels, n = propagation_round(src[sel], dst[sel], lookup)
        out.append(labels)
        changed += n
    labels = np.concatenate(out)
    return labels[np.argsort(labels["node"], kind="stable")], changed


def connected_labels(src: np.ndarray, dst: np.ndarray, self_label: Lookup, max_rounds: int = 64) -> np.ndarray:
    """All rounds in one process (small inputs and tests): converged NODE_LABEL_DTYPE labels."""
    both_src, both_dst = np.concatenate([src, dst]), np.concatenate([dst, src])
    current: np.ndarray | None = None

    def lookup(g: np.ndarray) -> np.ndarray:
        out = self_label(g)
        if current is not None and len(current):
            pos = np.searchsorted(current["node"], g).clip(max=len(current) - 1)
            hit = current["node"][pos] == g
            for f in ("key", "h", "gid"):
                out[f][hit] = current[f][pos[hit]]
        return out

    for _ in range(max_rounds):
        current, changed = propagation_round(both_src, both_dst, lookup)
        if changed == 0:
            break
    return current if current is not None else np.empty(0, NODE_LABEL_DTYPE)
