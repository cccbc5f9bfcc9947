"""DyMeshVAE: frame-0 shape and relative trajectories -> (tokens, 32 shape + 32 KL trajectory channels) -> offsets.

Shape V0 [B, N, 3] and trajectories relative to frame 0 [B, N, 3(T-1)] get separate Fourier encodings; one
attention layer over each vertex's sparse 1-ring (weights from shape features, applied to both streams);
farthest-point sampled tokens, each also given the least-squares local affine motion of the vertices around it;
encoder cross-attention blocks whose attention map comes from shape features and is applied to both streams;
two-stream decoder blocks (shape-stream attention maps drive the motion stream too, as in the encoder), then a
cross-attention queried by every vertex (keys: shape stream, values: motion stream). The decoder outputs per-token
affine motions (from the motion stream) blended by per-vertex skinning weights (from the shape stream; rigid and
articulated parts are exact in this form) plus a per-vertex residual. Motion scale is factored out: the encoder sees unit-RMS motion and scales its latent by the
clip's RMS; the decoder divides by the latent's RMS and scales its output back (scale-equivariant, so long drives
are no extrapolation). Masked throughout: padded vertices never change valid outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from schemas.normalisation import normalise_frames
from stages.train.adjacency import gather_neighbours, neighbour_lists
from stages.train.configs import VAEConfig
from stages.train.fps_sampling import farthest_points


def shape_and_motion(normalised: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, N, 3] -> (V0 [B, N, 3], trajectories relative to frame 0 [B, N, 3(T-1)])."""
    v0 = normalised[:, 0]
    rel = (normalised[:, 1:] - v0[:, None]).permute(0, 2, 1, 3)  # [B, N, T-1, 3]
    return v0, rel.reshape(rel.shape[0], rel.shape[1], -1)


def fourier(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """[..., D] -> [..., D(2L+1)]: x, sin(2^k pi x), cos(2^k pi x) for k < L."""
    scales = (2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype)) * math.pi
    angles = (x[..., None] * scales).flatten(-2)
    return torch.cat([x, angles.sin(), angles.cos()], dim=-1)


class GEGLU(nn.Module):
    """x * GELU(gate) over the two halves of the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return x * F.gelu(gate)


def mlp(width: int, mult: int = 4) -> nn.Sequential:
    """The published feed-forward: width -> 2 x mult x width -> GEGLU -> mult x width -> width."""
    return nn.Sequential(nn.Linear(width, 2 * mult * width), GEGLU(), nn.Linear(mult * width, width))


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_valid: torch.Tensor, heads: int,
           bias: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head attention q [B, Lq, C], k [B, Lk, C], v [B, Lk, Cv] with key_valid [B, Lk] (>= 1 True per row)
    and an optional additive bias [B, H, Lq, Lk]."""
    batch, lq, _ = q.shape
    lk = k.shape[1]

    def split(x: torch.Tensor, length: int) -> torch.Tensor:
        return x.view(batch, length, heads, -1).transpose(1, 2)

    mask = key_valid[:, None, None, :]
    if bias is not None:
        mask = bias.masked_fill(~mask, float("-inf")).to(q.dtype)
    out = F.scaled_dot_product_attention(split(q, lq), split(k, lk), split(v, lk), attn_mask=mask)
    return out.transpose(1, 2).reshape(batch, lq, -1)


def safe_key_mask(key_valid: torch.Tensor) -> torch.Tensor:
    """A key mask with at least one key per sample (an all-padding sample attends to its first key)."""
    empty = ~key_valid.any(1, keepdim=True)
    first = torch.zeros_like(key_valid)
    first[:, 0] = True
    return key_valid | (empty & first)


@torch.no_grad()
def token_widths(token_position: torch.Tensor, token_valid: torch.Tensor) -> torch.Tensor:
    """Squared distance from each token [B, M, 3] to its nearest other valid token -> [B, M], within [1e-4, 4]."""
    m = token_position.shape[1]
    between = squared_distances(token_position, token_position)
    between = between.masked_fill(~token_valid[:, None, :], float("inf"))
    between = between + torch.diag(torch.full((m,), float("inf"), device=token_position.device))
    width = between.amin(-1).clamp(min=1e-4, max=4.0)
    return torch.where(torch.isfinite(width), width, torch.full_like(width, 4.0))


def local_affine_motion(v0: torch.Tensor, motion: torch.Tensor, valid: torch.Tensor, token_position: torch.Tensor,
                        squared_distance: torch.Tensor, width: torch.Tensor) -> torch.Tensor:
    """Per token, the least-squares local affine motion of the vertices around it, for every frame.

    Vertex weights are a Gaussian of the rest distance with the token's `width` (`token_widths`). Returns
    [B, M, T-1, 4, 3]: rows 0..2 = A (offset = A (x - p) + b), row 3 = b, the displacement at the token p.
    v0 [B, N, 3], motion [B, N, 3(T-1)], squared_distance [B, M, N] (tokens to vertices), width [B, M].
    """
    batch, n, _ = v0.shape
    m = token_position.shape[1]
    with torch.no_grad():
        logits = -squared_distance.float() / width[..., None]
        weights = logits.masked_fill(~valid[:, None, :], float("-inf")).softmax(-1)  # [B, M, N]
        weights = torch.nan_to_num(weights)
    # weighted first and second moments as [B, M, N] x [B, N, .] products: no [M, N, 3] intermediate
    v0 = v0.float()
    motion = motion.float().view(batch, n, -1, 3)  # [B, N, T-1, 3]
    frames = motion.shape[2]
    mean_x = weights @ v0  # [B, M, 3]
    mean_d = (weights @ motion.flatten(2)).view(batch, m, frames, 3)
    second = (weights @ (v0[..., :, None] * v0[..., None, :]).flatten(2)).view(batch, m, 3, 3)
    covariance = second - mean_x[..., :, None] * mean_x[..., None, :]
    trace = covariance.diagonal(dim1=-2, dim2=-1).sum(-1).clamp(min=1e-8)
    covariance = covariance + (1e-3 * trace + 1e-8)[..., None, None] * torch.eye(3, device=v0.device)
    moved = (motion[..., :, None] * v0[:, :, None, None, :]).flatten(2)  # d_i(t) x_i^T  [B, N, (T-1) 9]
    cross = (weights @ moved).view(batch, m, frames, 3, 3) - mean_d[..., :, None] * mean_x[:, :, None, None, :]
    affine = torch.linalg.solve(covariance[:, :, None].expand(-1, -1, frames, -1, -1).transpose(-1, -2),
                                cross.transpose(-1, -2)).transpose(-1, -2)  # cross @ covariance^-1
    at_token = mean_d + torch.einsum("bmtij,bmj->bmti", affine, token_position.float() - mean_x)
    return torch.cat([affine, at_token[..., None, :]], dim=-2)


class DistanceBias(nn.Module):
    """Per-head locality prior for cross-attention: -scale_h x |p_query - p_key|^2 on rest positions (learned scale)."""

    def __init__(self, heads: int, initial_scale: float = 8.0):
        super().__init__()
        self.raw_scale = nn.Parameter(torch.full((heads,), math.log(math.expm1(initial_scale))))

    def forward(self, squared_distance: torch.Tensor) -> torch.Tensor:
        """squared_distance [B, Lq, Lk] -> bias [B, H, Lq, Lk]."""
        return -F.softplus(self.raw_scale)[None, :, None, None] * squared_distance[:, None].float()


def squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, La, 3] x [B, Lb, 3] -> [B, La, Lb] squared Euclidean distances (float32)."""
    a, b = a.float(), b.float()
    return ((a * a).sum(-1)[:, :, None] + (b * b).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)).clamp(min=0.0)


class OneRingAttention(nn.Module):
    """Attention over each vertex's sparse 1-ring; weights from shape features, applied to shape and motion."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_shape = nn.LayerNorm(width)
        self.norm_motion = nn.LayerNorm(width)
        self.qk = nn.Linear(width, 2 * width)
        self.value_shape = nn.Linear(width, width)
        self.value_motion = nn.Linear(width, width)
        self.out_shape = nn.Linear(width, width)
        self.out_motion = nn.Linear(width, width)

    def forward(self, shape, motion, index, mask):
        batch, n, _ = shape.shape
        k_slots = index.shape[-1]
        hs, hm = self.norm_shape(shape), self.norm_motion(motion)
        q, k = self.qk(hs).chunk(2, dim=-1)
        values = torch.cat([self.value_shape(hs), self.value_motion(hm)], dim=-1)
        k_n = gather_neighbours(k, index).view(batch, n, k_slots, self.heads, -1)
        v_n = gather_neighbours(values, index).view(batch, n, k_slots, 2, self.heads, -1)
        q = q.view(batch, n, 1, self.heads, -1)
        logits = (q * k_n).sum(-1) / math.sqrt(q.shape[-1])  # [B, N, K, H]
        logits = logits.float().masked_fill(~mask[..., None], float("-inf"))
        weights = logits.softmax(dim=2).to(v_n.dtype)
        mixed = (weights[:, :, :, None, :, None] * v_n).sum(2)  # [B, N, 2, H, d]
        mixed = mixed.reshape(batch, n, 2, -1)
        return shape + self.out_shape(mixed[:, :, 0]), motion + self.out_motion(mixed[:, :, 1])


class SharedMapCrossBlock(nn.Module):
    """Two-stream (shape, motion) attention + MLP block: one attention map from shape features drives both streams.

    The encoder's tokens cross-attend to the vertices (with a locality bias, `local`); the decoder's tokens attend
    to each other. `inner` is the attention width (heads x head width; default `width`).
    """

    def __init__(self, width: int, heads: int, inner: int = 0, local: bool = True):
        super().__init__()
        inner = inner or width
        if inner % heads:
            raise ValueError("attention width must be a multiple of heads")
        self.heads, self.inner = heads, inner
        self.norm_token = nn.LayerNorm(width)
        self.norm_shape = nn.LayerNorm(width)
        self.norm_motion = nn.LayerNorm(width)
        self.query = nn.Linear(width, inner)
        self.key = nn.Linear(width, inner)
        self.value_shape = nn.Linear(width, inner)
        self.value_motion = nn.Linear(width, inner)
        self.out_shape = nn.Linear(inner, width)
        self.out_motion = nn.Linear(inner, width)
        self.norm_mlp_shape = nn.LayerNorm(width)
        self.norm_mlp_motion = nn.LayerNorm(width)
        self.mlp_shape = mlp(width)
        self.mlp_motion = mlp(width)
        self.distance = DistanceBias(heads) if local else None

    def forward(self, token_shape, token_motion, vertex_shape, vertex_motion, key_valid, squared_distance=None):
        batch, lk, _ = vertex_shape.shape
        hs = self.norm_shape(vertex_shape)
        q = self.query(self.norm_token(token_shape))
        k = self.key(hs)
        vs = self.value_shape(hs).view(batch, lk, self.heads, -1)
        vm = self.value_motion(self.norm_motion(vertex_motion)).view(batch, lk, self.heads, -1)
        v = torch.cat([vs, vm], dim=-1).view(batch, lk, -1)  # per head: [shape | motion] values
        bias = self.distance(squared_distance) if self.distance is not None else None
        mixed = attend(q, k, v, key_valid, self.heads, bias).view(batch, -1, self.heads, 2, self.inner // self.heads)
        token_shape = token_shape + self.out_shape(mixed[:, :, :, 0].flatten(2))
        token_motion = token_motion + self.out_motion(mixed[:, :, :, 1].flatten(2))
        token_shape = token_shape + self.mlp_shape(self.norm_mlp_shape(token_shape))
        token_motion = token_motion + self.mlp_motion(self.norm_mlp_motion(token_motion))
        return token_shape, token_motion


class QueryBlock(nn.Module):
    """Vertices query the decoded tokens: keys from the shape stream, values from the motion stream, a locality
    bias on rest positions, then an MLP (the published decoder's final cross-attention)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm_q = nn.LayerNorm(width)
        self.norm_k = nn.LayerNorm(width)
        self.norm_v = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = mlp(width)
        self.distance = DistanceBias(heads)

    def forward(self, x, token_shape, token_motion, key_valid, squared_distance):
        k, v = self.key(self.norm_k(token_shape)), self.value(self.norm_v(token_motion))
        bias = self.distance(squared_distance)
        x = x + self.out(attend(self.query(self.norm_q(x)), k, v, key_valid, self.heads, bias))
        return x + self.mlp(self.norm_mlp(x))


def blend_affine_motion(weights: torch.Tensor, token_motion: torch.Tensor, token_position: torch.Tensor,
                        v0: torch.Tensor) -> torch.Tensor:
    """Linear-blend skinning of per-token affine motions: sum_j w_ij (A_j(t) (x_i - p_j) + b_j(t)).

    weights [B, N, M] (rows sum to 1), token_motion [B, M, T-1, 4, 3] (rows 0..2 = A, row 3 = b), token rest
    positions p [B, M, 3], vertices x = V0 [B, N, 3] -> offsets [B, N, T-1, 3]. Computed as blended A times x plus
    blended (b - A p): memory O(N (T-1) 12), never [N, M, T-1].
    """
    affine, at_token = token_motion[..., :3, :].float(), token_motion[..., 3, :].float()
    constant = at_token - torch.einsum("bmtij,bmj->bmti", affine, token_position.float())
    blended_affine = torch.einsum("bnm,bmtij->bntij", weights.float(), affine)
    blended_constant = torch.einsum("bnm,bmti->bnti", weights.float(), constant)
    return torch.einsum("bntij,bnj->bnti", blended_affine, v0.float()) + blended_constant


class BlendWeights(nn.Module):
    """Skinning-like weights [B, N, M] of every vertex over the tokens (one head, with a learned locality prior)."""

    def __init__(self, width: int):
        super().__init__()
        self.norm_query = nn.LayerNorm(width)
        self.norm_token = nn.LayerNorm(width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.distance = DistanceBias(1)

    def forward(self, query, tokens, token_valid, squared_distance):
        q, k = self.query(self.norm_query(query)), self.key(self.norm_token(tokens))
        logits = (q @ k.transpose(1, 2)).float() / math.sqrt(q.shape[-1]) + self.distance(squared_distance)[:, 0]
        return logits.masked_fill(~token_valid[:, None, :], float("-inf")).softmax(-1)


@dataclass
class Latent:
    """Encoder output: z [B, M, 64] = 32 shape + 32 trajectory channels, with the token mask."""

    z: torch.Tensor
    mean: torch.Tensor  # trajectory posterior mean [B, M, 32]
    logvar: torch.Tensor
    token_valid: torch.Tensor  # [B, M]
    token_index: torch.Tensor  # [B, M] the farthest-point vertices (recomputable from V0 alone)


class DyMeshVAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        if config.frames < 2:
            raise ValueError("DyMeshVAE needs clips of at least 2 frames")
        if config.width % config.heads:
            raise ValueError("VAE width must be a multiple of heads")
        if config.augment not in ("yaw", "none"):
            raise ValueError(f"VAE augment must be 'yaw' or 'none', not {config.augment!r}")
        self.config = config
        width, freq = config.width, config.fourier_frequencies
        motion_dims = 3 * (config.frames - 1)
        self.embed_shape = nn.Linear(3 * (2 * freq + 1), width)
        self.embed_motion = nn.Linear(motion_dims * (2 * freq + 1), width)
        self.one_ring = OneRingAttention(width, config.heads)
        self.encoder = nn.ModuleList(SharedMapCrossBlock(width, config.heads) for _ in range(config.encoder_blocks))
        self.norm_latent_shape = nn.LayerNorm(width)
        self.norm_latent_motion = nn.LayerNorm(width)
        self.to_shape = nn.Linear(width, config.shape_channels)
        self.to_motion = nn.Linear(width, 2 * config.trajectory_channels)
        self.from_shape = nn.Linear(config.shape_channels, width)
        self.from_motion = nn.Linear(config.trajectory_channels, width)
        self.embed_token = nn.Linear(3 * (2 * freq + 1), width)
        inner = config.heads * config.decoder_head_width
        self.decoder = nn.ModuleList(SharedMapCrossBlock(width, config.heads, inner, local=False)
                                     for _ in range(config.decoder_blocks))
        self.embed_query = nn.Linear(3 * (2 * freq + 1), width)
        self.query_block = QueryBlock(width, config.heads)
        self.norm_out = nn.LayerNorm(width)
        self.to_offsets = nn.Linear(width, motion_dims)
        self.embed_affine = nn.Linear(4 * motion_dims, width)
        self.blend = BlendWeights(width)
        self.norm_token_motion = nn.LayerNorm(width)
        self.to_token_motion = nn.Linear(width, 4 * motion_dims)
        for head in (self.to_offsets, self.to_token_motion):  # start from "no motion": the prediction is V0 itself
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    attention_elements = 2**25  # rows x keys x heads per attention chunk: bounds memory at inference on big meshes

    def row_chunks(self, rows: int, keys: int) -> list[slice]:
        """Slices of `rows` (queries) so that one chunk's [rows, keys, heads] maps stay within attention_elements."""
        step = max(1, self.attention_elements // max(1, keys * self.config.heads))
        return [slice(start, min(start + step, rows)) for start in range(0, rows, step)] or [slice(0, 0)]

    def token_counts(self, valid: torch.Tensor, training: bool) -> torch.Tensor:
        """Tokens per sample [B]: `tokens` in training, max(tokens, N_valid / 8) at inference (as in the paper)."""
        tokens = torch.full((valid.shape[0],), self.config.tokens, dtype=torch.long, device=valid.device)
        return tokens if training else torch.maximum(tokens, valid.sum(1) // 8)

    def encode(self, v0, motion, valid, faces, tokens: int | None = None, sample: bool = False) -> Latent:
        """V0 [B, N, 3], motion [B, N, 3(T-1)] (zeros when only the shape is known), valid [B, N], faces [B, F, 3]."""
        config = self.config
        valid = valid.bool()
        key_valid = safe_key_mask(valid)
        scale = masked_rms(motion, valid)  # the network sees unit-RMS motion; the latent carries the scale
        motion = motion / scale[:, None, None].to(motion.dtype)
        shape = self.embed_shape(fourier(v0, config.fourier_frequencies))
        motion_h = self.embed_motion(fourier(motion, config.fourier_frequencies))
        index, mask = neighbour_lists(faces, valid, config.max_neighbours)
        shape, motion_h = self.one_ring(shape, motion_h, index, mask)
        counts = self.token_counts(valid, self.training) if tokens is None else torch.full_like(valid[:, 0], tokens, dtype=torch.long)
        token_index, token_valid = farthest_points(v0, key_valid, int(counts.max()))
        token_valid &= torch.arange(token_valid.shape[1], device=valid.device)[None] < counts[:, None]
        gather = token_index[..., None].expand(-1, -1, shape.shape[-1])
        token_shape, token_motion = shape.gather(1, gather), motion_h.gather(1, gather)
        token_position = v0.gather(1, token_index[..., None].expand(-1, -1, 3))
        width = token_widths(token_position, token_valid)
        shapes, motions = [], []
        for part in self.row_chunks(token_position.shape[1], v0.shape[1]):  # tokens never attend to each other here
            distance = squared_distances(token_position[:, part], v0)
            affine = local_affine_motion(v0, motion, valid, token_position[:, part], distance, width[:, part])
            part_shape = token_shape[:, part]
            part_motion = token_motion[:, part] + self.embed_affine(affine.flatten(2).to(token_motion.dtype))
            for block in self.encoder:
                part_shape, part_motion = block(part_shape, part_motion, shape, motion_h, key_valid, distance)
            shapes.append(part_shape)
            motions.append(part_motion)
        token_shape, token_motion = torch.cat(shapes, dim=1), torch.cat(motions, dim=1)
        shape_latent = self.to_shape(self.norm_latent_shape(token_shape))
        mean, logvar = self.to_motion(self.norm_latent_motion(token_motion)).chunk(2, dim=-1)
        # std <= 1 (the prior's) on the unit-scale latent: unused channels cannot grow noise that the decoder
        # would come to depend on (posterior means are what the flow model and inference decode)
        logvar = logvar.float().clamp(-30.0, 0.0) + 2 * scale.log()[:, None, None]
        mean = mean * scale[:, None, None].to(mean.dtype)
        motion_latent = mean
        if sample:
            motion_latent = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar).to(mean.dtype)
        z = torch.cat([shape_latent, motion_latent], dim=-1)
        return Latent(z=z, mean=mean, logvar=logvar, token_valid=token_valid, token_index=token_index)

    def decode(self, z, token_valid, v0, token_index, magnitude: torch.Tensor | None = None) -> torch.Tensor:
        """Latent z [B, M, 64], the query vertices V0 [B, N, 3] and the token vertices -> offsets [B, T-1, N, 3].

        The token vertices' rest positions (known whenever V0 is) are added to the tokens, so the decoder does not
        have to learn where each token sits from its shape channels alone. The trajectory channels are divided by
        their RMS `magnitude` (default: measured on z) and the offsets multiplied by it: the decoder is
        scale-equivariant in motion, so a clip moving farther than any training clip is no extrapolation.
        """
        config = self.config
        shape_z, trajectory = z.split([config.shape_channels, config.trajectory_channels], dim=-1)
        if magnitude is None:  # over the valid tokens, as forward() measures it on the posterior means
            magnitude = masked_rms(trajectory, token_valid.bool())
        token_valid = safe_key_mask(token_valid.bool())
        token_position = v0.gather(1, token_index[..., None].expand(-1, -1, 3))
        shape = self.from_shape(shape_z) + self.embed_token(fourier(token_position, config.fourier_frequencies))
        motion = self.from_motion(trajectory / magnitude[:, None, None].to(z.dtype))
        for block in self.decoder:  # shape-stream attention maps drive both streams
            shape, motion = block(shape, motion, shape, motion, token_valid)
        batch, n = v0.shape[:2]
        token_motion = self.to_token_motion(self.norm_token_motion(motion)).float()
        token_motion = token_motion.view(batch, -1, config.frames - 1, 4, 3)
        pieces = []
        for part in self.row_chunks(n, shape.shape[1]):  # every vertex is decoded on its own
            vertices = v0[:, part]
            distance = squared_distances(vertices, token_position)
            query = self.embed_query(fourier(vertices, config.fourier_frequencies))
            query = self.query_block(query, shape, motion, token_valid, distance)
            residual = self.to_offsets(self.norm_out(query)).view(batch, -1, config.frames - 1, 3)
            weights = self.blend(query, shape, token_valid, distance)  # [B, N_part, M] skinning from shape
            skinned = blend_affine_motion(weights, token_motion, token_position, vertices)
            pieces.append(residual + skinned.to(residual.dtype))
        offsets = torch.cat(pieces, dim=1)  # [B, N, T-1, 3]
        return (offsets * magnitude[:, None, None, None].to(offsets.dtype)).permute(0, 2, 1, 3)

    def forward(self, vertices: torch.Tensor, valid: torch.Tensor, faces: torch.Tensor) -> dict:
        """A padded batch [B, T, N, 3] -> loss terms and the reconstruction (normalised coordinates)."""
        valid = valid.bool()
        normalised, _, _ = normalise_frames(vertices, valid)
        v0, motion = shape_and_motion(normalised)
        latent = self.encode(v0, motion, valid, faces, sample=self.training)
        magnitude = masked_rms(latent.mean, latent.token_valid)  # as measured on means at inference
        offsets = self.decode(latent.z, latent.token_valid, v0, latent.token_index, magnitude)
        prediction = v0[:, None] + offsets
        recon = vertex_error(prediction, normalised[:, 1:], valid)
        kl = kl_divergence(latent.mean, latent.logvar, latent.token_valid)
        loss = recon + self.config.kl_weight * kl
        return {"loss": loss, "recon": recon, "kl": kl, "prediction": prediction, "target": normalised[:, 1:]}


MIN_MAGNITUDE = 1e-6  # RMS motion (normalised units) below which a clip counts as still


def masked_rms(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """RMS of [B, L, C] over the valid rows [B, L] -> [B], floored at MIN_MAGNITUDE (motion or trajectory latents)."""
    weights = valid.float()[..., None]
    total = (values.float() ** 2 * weights).sum((1, 2))
    count = (weights.sum((1, 2)) * values.shape[-1]).clamp(min=1.0)
    return (total / count).sqrt().clamp(min=MIN_MAGNITUDE)


def vertex_error(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean per-vertex L2 distance over valid vertices and frames; [B, T, N, 3] each."""
    distance = torch.sqrt(((prediction.float() - target.float()) ** 2).sum(-1) + 1e-12)  # [B, T, N]
    weights = valid[:, None, :].expand_as(distance).float()
    return (distance * weights).sum() / weights.sum().clamp(min=1.0)


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor, token_valid: torch.Tensor) -> torch.Tensor:
    """KL(q || N(0, I)) summed over channels, averaged over valid tokens."""
    mean = mean.float()
    per_token = 0.5 * (mean**2 + logvar.exp() - 1.0 - logvar).sum(-1)
    weights = token_valid.float()
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0)


def vae_from_state(state: dict) -> DyMeshVAE:
    """Rebuild a VAE from a checkpoint's {"config": {...}, "model": state_dict}."""
    model = DyMeshVAE(VAEConfig(**state["config"]))
    model.load_state_dict(state["model"])
    return model
