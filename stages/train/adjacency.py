"""Sparse 1-ring neighbourhoods from padded faces: [B, N, K] neighbour index lists with a mask, never N x N."""

from __future__ import annotations

import torch


def neighbour_lists(
    faces: torch.Tensor, valid: torch.Tensor, max_neighbours: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each vertex's 1-ring from `faces` [B, F, 3] (padded with -1) as (index [B, N, K+1], mask [B, N, K+1]).

    Slot 0 is the vertex itself and always unmasked (so no softmax row is empty); slots 1..K hold up to
    `max_neighbours` distinct neighbours in ascending index order. Empty slots point at the vertex itself and
    are masked out. Edges touching a padded vertex (valid False) are dropped, so valid vertices never see padding.
    Memory is O(B x F + B x N x K).
    """
    batch, num_vertices = valid.shape
    device = faces.device
    k = int(max_neighbours)
    index = torch.arange(num_vertices, device=device).view(1, num_vertices, 1).expand(batch, num_vertices, k + 1)
    index = index.clone()
    mask = torch.zeros(batch, num_vertices, k + 1, dtype=torch.bool, device=device)
    mask[:, :, 0] = True
    if faces.numel() == 0 or k == 0:
        return index, mask

    faces = faces.long()
    a, b, c = faces[..., 0], faces[..., 1], faces[..., 2]
    src = torch.cat([a, b, c, b, c, a], dim=1)  # [B, 6F] directed edges of every triangle
    dst = torch.cat([b, c, a, a, b, c], dim=1)
    batch_id = torch.arange(batch, device=device).view(batch, 1).expand_as(src)
    ok = (src >= 0) & (dst >= 0) & (src < num_vertices) & (dst < num_vertices) & (src != dst)
    src, dst, batch_id = src[ok], dst[ok], batch_id[ok]
    if src.numel() == 0:
        return index, mask
    ok = valid[batch_id, src] & valid[batch_id, dst]
    src, dst, batch_id = src[ok], dst[ok], batch_id[ok]
    if src.numel() == 0:
        return index, mask

    row = batch_id * num_vertices + src  # one row per (sample, vertex)
    key = torch.unique(row * num_vertices + dst)  # sorted: by row, then neighbour index; duplicates dropped
    row = key // num_vertices
    dst = key % num_vertices
    first = torch.searchsorted(row, row, right=False)  # start of each row's run
    rank = torch.arange(row.numel(), device=device) - first
    keep = rank < k
    row, dst, rank = row[keep], dst[keep], rank[keep]
    flat_index = index.view(batch * num_vertices, k + 1)
    flat_mask = mask.view(batch * num_vertices, k + 1)
    flat_index[row, rank + 1] = dst
    flat_mask[row, rank + 1] = True
    return index, mask


def gather_neighbours(features: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """features [B, N, C] gathered at index [B, N, K] -> [B, N, K, C]."""
    batch, num_vertices, k = index.shape
    channels = features.shape[-1]
    flat = index.reshape(batch, num_vertices * k, 1).expand(batch, num_vertices * k, channels)
    return torch.gather(features, 1, flat).view(batch, num_vertices, k, channels)
