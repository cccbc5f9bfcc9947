"""Farthest-point sampling of token vertices over valid vertices only (batched, deterministic)."""

from __future__ import annotations

import torch


@torch.no_grad()
def farthest_points(points: torch.Tensor, valid: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick `count` vertex indices per sample from points [B, N, C] among `valid` [B, N].

    Starts at the valid vertex farthest from the valid centroid (deterministic). Returns (index [B, count] int64,
    token_valid [B, count] bool); samples with fewer valid vertices than `count` get their extra tokens marked
    invalid (they point at an already chosen vertex).
    """
    batch, num_vertices, _ = points.shape
    points = points.float()
    weights = valid.float().unsqueeze(-1)
    counts = weights.sum(1).clamp(min=1.0)
    centroid = (points * weights).sum(1, keepdim=True) / counts.unsqueeze(1)
    neg_inf = torch.finfo(points.dtype).min
    dist_to_centroid = ((points - centroid) ** 2).sum(-1).masked_fill(~valid, neg_inf)
    current = dist_to_centroid.argmax(1)
    index = torch.empty(batch, count, dtype=torch.long, device=points.device)
    nearest = torch.full((batch, num_vertices), float("inf"), device=points.device)
    rows = torch.arange(batch, device=points.device)
    for m in range(count):
        index[:, m] = current
        chosen = points[rows, current].unsqueeze(1)
        nearest = torch.minimum(nearest, ((points - chosen) ** 2).sum(-1))
        current = nearest.masked_fill(~valid, -1.0).argmax(1)
    token_valid = torch.arange(count, device=points.device).unsqueeze(0) < valid.sum(1, keepdim=True)
    return index, token_valid
