"""Batches for training: padding (`collate_padded`) and the one resumable loader over a dataset (`ShardLoader`).

    from stages.shard.reader import ShardDataset
    loader = ShardLoader(ShardDataset("out/demo", split="train"), batch_size=8, num_workers=2)
    for batch in loader:                 # one epoch; the loader records what was consumed
        ...; checkpoint["data"] = loader.state_dict()
    batch = loader.next()                # or endless batches over epochs (the training loop)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader


def collate_padded(samples: list[dict], max_vertices: int | None = None, max_faces: int | None = None) -> dict:
    """Batch of samples padded to max_vertices (vertices 0, mask False) and max_faces (faces -1); no NaN.

    Defaults pad to the largest sample in the batch. AnimateAnyMesh pads to 4096 vertices and 10,240 faces.
    """
    if not samples:
        raise ValueError("collate_padded needs at least one sample")
    frames = {s["vertices"].shape[0] for s in samples}
    if len(frames) != 1:
        raise ValueError(f"samples have different frame counts {sorted(frames)}; set ShardDataset(max_frames=...)")
    n_max = max(s["vertices"].shape[1] for s in samples)
    f_max = max(s["faces"].shape[0] for s in samples)
    n_pad, f_pad = max_vertices or n_max, max_faces or f_max
    if n_max > n_pad or f_max > f_pad:
        raise ValueError(f"a sample has {n_max} vertices / {f_max} faces, more than max_vertices={n_pad} / max_faces={f_pad}")
    batch, t = len(samples), frames.pop()
    vertices = torch.zeros(batch, t, n_pad, 3, dtype=torch.float32)
    faces = torch.full((batch, f_pad, 3), -1, dtype=torch.int64)
    mask = torch.zeros(batch, n_pad, dtype=torch.bool)
    for i, s in enumerate(samples):
        n, f = s["vertices"].shape[1], s["faces"].shape[0]
        vertices[i, :, :n] = torch.nan_to_num(s["vertices"].float(), nan=0.0, posinf=0.0, neginf=0.0)
        faces[i, :f] = s["faces"]
        mask[i, :n] = True
    return {
        "vertices": vertices,
        "faces": faces,
        "valid_mask": mask,
        "num_vertices": mask.sum(1),
        "num_faces": torch.tensor([s["faces"].shape[0] for s in samples]),
        "caption": [s["caption"] for s in samples],
        "key": [s["key"] for s in samples],
        "slot": torch.tensor([s["slot"] for s in samples]),
        "slots": torch.tensor([s["slots"] for s in samples]),
        "index": torch.tensor([s["index"] for s in samples]),
        "corrupt_skipped": torch.tensor([s.get("corrupt_skipped", 0) for s in samples]),
    }


class ShardLoader:
    """Padded batches over epochs with a resumable position: `for batch in loader` is one epoch, `next()` draws
    endlessly. Datasets with `state_dict` / `record` (ShardDataset) resume without reading what was consumed;
    others are resumed by re-drawing and dropping the batches already taken in the epoch."""

    def __init__(self, dataset, batch_size: int, num_workers: int = 0, collate_fn=collate_padded,
                 position: dict | None = None):
        self.dataset = dataset
        self.batch_size, self.num_workers, self.collate_fn = batch_size, num_workers, collate_fn
        self.epoch, self.taken, self.iterator = 0, 0, None
        self.load_state_dict(position or {"epoch": 0, "taken": 0})

    @property
    def resumable(self) -> bool:
        return hasattr(self.dataset, "state_dict") and hasattr(self.dataset, "record")

    def epoch_iterator(self) -> Iterator[dict]:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        loader = DataLoader(
            self.dataset, batch_size=self.batch_size, collate_fn=self.collate_fn, num_workers=self.num_workers,
            persistent_workers=False, drop_last=False,
            generator=torch.Generator().manual_seed(self.epoch),  # keeps the global RNG untouched
        )
        return iter(loader)

    def draw(self) -> dict:
        """The next batch of this epoch (StopIteration at its end), recorded as consumed."""
        if self.iterator is None:
            self.iterator = self.epoch_iterator()
        batch = next(self.iterator)
        self.taken += 1
        if hasattr(self.dataset, "record"):
            self.dataset.record(batch)
        return batch

    def next_epoch(self) -> None:
        self.epoch, self.taken, self.iterator = self.epoch + 1, 0, None
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def __iter__(self) -> Iterator[dict]:
        while True:
            try:
                batch = self.draw()
            except StopIteration:
                self.next_epoch()
                return
            yield batch

    def next(self) -> dict:
        """The next batch, starting the next epoch when this one is used up."""
        try:
            return self.draw()
        except StopIteration:
            if self.taken == 0:
                raise ValueError(f"the dataset yields no clips in epoch {self.epoch} for this rank") from None
            self.next_epoch()
            return self.draw()

    def state_dict(self) -> dict:
        """{"epoch", "taken" (batches of this epoch), "dataset" (the dataset's own state, when it has one)}."""
        position = {"epoch": self.epoch, "taken": self.taken}
        if hasattr(self.dataset, "state_dict"):
            position["dataset"] = self.dataset.state_dict()
        return position

    def load_state_dict(self, position: dict) -> None:
        """Continue from a `state_dict()`."""
        self.epoch, self.taken, self.iterator = int(position["epoch"]), 0, None
        if self.resumable and "dataset" in position:
            self.dataset.load_state_dict(position["dataset"])
        if self.resumable:
            self.taken = int(position["taken"])
        else:
            for _ in range(int(position["taken"])):
                self.next()
