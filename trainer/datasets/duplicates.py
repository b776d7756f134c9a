"""Exact and near duplicates, and the groups the split must keep on one side.

Near duplicates are found two ways: equal normalised text (case, punctuation and spacing
ignored), and MinHash over character 5-grams of that text with LSH candidate search (datasketch),
confirmed by the estimated Jaccard similarity. CRC-32 hashes the shingles: it is deterministic
across processes (Python's ``hash`` is not) and about twice as fast as datasketch's SHA-1 default.
"""

import zlib
from collections import defaultdict
from collections.abc import Hashable, Sequence

NEAR_DUPLICATE_THRESHOLD = 0.8
SHINGLE_CHARS = 5
NUM_PERM = 128


class UnionFind:
    def __init__(self, size: int):
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            # The smaller index becomes the root, so group roots are stable and readable.
            self.parent[max(root_a, root_b)] = min(root_a, root_b)

    def union_by_key(self, keys: Sequence[Hashable]) -> None:
        first: dict[Hashable, int] = {}
        for index, key in enumerate(keys):
            self.union(first.setdefault(key, index), index)

    def groups(self) -> list[list[int]]:
        """All groups (singletons included), each sorted, ordered by their first member."""
        members: dict[int, list[int]] = defaultdict(list)
        for index in range(len(self.parent)):
            members[self.find(index)].append(index)
        return sorted(members.values(), key=lambda group: group[0])


def groups_by_key(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices sharing a key, for keys held by more than one index, in order of first use."""
    members: dict[Hashable, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        members[key].append(index)
    return [group for group in members.values() if len(group) > 1]


def shingles(text: str) -> set[bytes]:
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= SHINGLE_CHARS:
        return {data} if data else set()
    return {data[i : i + SHINGLE_CHARS] for i in range(len(data) - SHINGLE_CHARS + 1)}


def similar_pairs(
    texts: Sequence[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[tuple[int, int]]:
    """Pairs (i, j), i < j, whose MinHash-estimated Jaccard similarity reaches ``threshold``."""
    from datasketch import MinHash, MinHashLSH

    template = MinHash(num_perm=NUM_PERM, seed=1, hashfunc=zlib.crc32)
    index = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    sketches: dict[int, MinHash] = {}
    pairs: list[tuple[int, int]] = []
    for position, text in enumerate(texts):
        grams = shingles(text)
        if not grams:
            continue
        sketch = MinHash(
            num_perm=NUM_PERM,
            hashfunc=zlib.crc32,
            permutations=template.permutations,
            scheme=template.scheme,
        )
        sketch.update_batch(list(grams))
        for other in index.query(sketch):
            if sketches[other].jaccard(sketch) >= threshold:
                pairs.append((other, position))
        index.insert(position, sketch)
        sketches[position] = sketch
    return sorted(pairs)


def near_duplicate_clusters(
    normalised: Sequence[str], exact: Sequence[str], threshold: float = NEAR_DUPLICATE_THRESHOLD
) -> list[list[int]]:
    """Clusters of examples that are near duplicates without all being identical.

    ``normalised`` is each example's normalised text, ``exact`` its content hash; a cluster whose
    members all share one content hash is an exact duplicate and reported as such elsewhere.
    """
    links = UnionFind(len(normalised))
    links.union_by_key(normalised)
    for a, b in similar_pairs(normalised, threshold):
        links.union(a, b)
    return [
        group for group in links.groups() if len(group) > 1 and len({exact[i] for i in group}) > 1
    ]
