"""SAM's prompt encoder and mask decoder in torch, with the weights of a SAM-format ONNX
decoder, so that fewclick can fine-tune the decoder on a project's masks.

The layout is SAM's (Kirillov et al., 2023, section 3 and appendix A): the prompt's points
(clicks, box corners) are random-Fourier position encodings plus a learned embedding per
label; the previous mask is downscaled by two strided convolutions; a two-way transformer
of two blocks lets the output tokens (an IoU token and four mask tokens) and the image
embedding attend to each other; the image is upscaled 4x and each mask token's hypernetwork
MLP weights its 32 channels into one mask; an MLP on the IoU token predicts each mask's IoU.

:meth:`SamDecoder.from_onnx` reads the weights from the ONNX export (the file SamPredictor
runs). The export's linear layers are anonymous initializers: each is matched to its layer
by the name of the MatMul node that uses it. ``forward`` returns all four masks'
low-resolution logits and predicted IoUs (the graph serves one: the best predicted of masks
1-3 for up to :data:`~fewclick.models.sam_pick.AMBIGUOUS_POINTS` points, else mask 0). A tuned decoder's
``iou_offsets`` (:mod:`fewclick.models.sam_pick`) travel in the ONNX file's metadata.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fewclick.models.sam_pick import OFFSETS_KEY, dump_offsets, parse_offsets

EMBED_DIM = 256
IMAGE_SIZE = 1024  # the padded input the prompt's coordinates are in
GRID = 64  # the image embedding's side
MASK_TOKENS = 4


class LayerNorm2d(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class Attention(nn.Module):
    """Multi-head attention whose projections may shrink the width by ``downsample``."""

    def __init__(self, dim: int, heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(dim, inner) for _ in range(3))
        self.out_proj = nn.Linear(inner, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))
        attn = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(q.shape[-1]), dim=-1)
        out = (attn @ v).transpose(1, 2)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


class MLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.relu(self.lin1(x)))


class TwoWayBlock(nn.Module):
    """Tokens attend to themselves, tokens to the image, an MLP on the tokens, then the
    image to the tokens; each step residual and layer-normed."""

    def __init__(self, dim: int = EMBED_DIM, heads: int = 8, skip_first_pe: bool = False) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn_token_to_image = Attention(dim, heads, 2)
        self.cross_attn_image_to_token = Attention(dim, heads, 2)
        self.mlp = MLPBlock(dim, 2048)
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(dim) for _ in range(4))
        self.skip_first_pe = skip_first_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, dim: int = EMBED_DIM, depth: int = 2, heads: int = 8) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, heads, skip_first_pe=i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, heads, 2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor):
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q, k = queries + tokens, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys


class MLP(nn.Module):
    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class SamDecoder(nn.Module):
    """SAM's prompt encoder and mask decoder (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("gaussian", torch.randn(2, EMBED_DIM // 2))
        self.point_embeddings = nn.Parameter(torch.zeros(4, EMBED_DIM))  # negative, positive, corners
        self.not_a_point_embed = nn.Parameter(torch.zeros(EMBED_DIM))
        self.no_mask_embed = nn.Parameter(torch.zeros(EMBED_DIM))
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, 4, 2, stride=2),
            LayerNorm2d(4),
            nn.GELU(),
            nn.Conv2d(4, 16, 2, stride=2),
            LayerNorm2d(16),
            nn.GELU(),
            nn.Conv2d(16, EMBED_DIM, 1),
        )
        self.output_tokens = nn.Parameter(torch.zeros(1 + MASK_TOKENS, EMBED_DIM))  # IoU, then masks
        self.transformer = TwoWayTransformer()
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(EMBED_DIM, 64, 2, stride=2),
            LayerNorm2d(64),
            nn.GELU(),
            nn.ConvTranspose2d(64, 32, 2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP([EMBED_DIM, EMBED_DIM, EMBED_DIM, 32]) for _ in range(4)
        )
        self.iou_prediction_head = MLP([EMBED_DIM, EMBED_DIM, EMBED_DIM, MASK_TOKENS])
        #: per prompt kind, what is added to the predicted IoUs before the mask served is
        #: chosen (None: SAM's own choice); not weights, so not in the state dict
        self.iou_offsets: dict[str, list[float]] | None = None

    def _fourier(self, coords: torch.Tensor) -> torch.Tensor:
        """Random Fourier features of ``coords`` in [0, 1]: ``[..., 256]``."""
        coords = (2 * coords - 1) @ self.gaussian
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def dense_pe(self) -> torch.Tensor:
        """The image grid's position encoding ``[1, 256, 64, 64]``."""
        centres = (torch.arange(GRID, dtype=torch.float32) + 0.5) / GRID
        y, x = torch.meshgrid(centres, centres, indexing="ij")
        return self._fourier(torch.stack([x, y], dim=-1)).permute(2, 0, 1)[None]

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``coords [B, N, 2]`` in the 1024 px input frame, ``labels [B, N]`` (0 negative,
        1 positive, 2 / 3 box corners, -1 padding) -> ``[B, N, 256]``."""
        pe = self._fourier((coords + 0.5) / IMAGE_SIZE)
        labels = labels[..., None]
        pe = pe * (labels != -1) + self.not_a_point_embed * (labels == -1)
        for i in range(4):
            pe = pe + self.point_embeddings[i] * (labels == i)
        return pe

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ONNX decoder's inputs -> (``low_res [B, 4, 256, 256]`` logits of all four
        masks, ``iou [B, 4]`` their predicted IoUs)."""
        sparse = self.embed_points(point_coords, point_labels)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        dense = has * self.mask_downscaling(mask_input) + (1 - has) * self.no_mask_embed[None, :, None, None]
        return self._decode(image_embeddings + dense, self.dense_pe(), sparse)

    def forward_near(
        self, image_embeddings: torch.Tensor, point_coords: torch.Tensor, crop: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Single positive clicks ``point_coords [B, 2]`` (1024 px input frame) on one image's
        ``image_embeddings [1, 256, 64, 64]``, each attending only to the ``crop x crop``
        embedding cells around it (moved inside the grid at its edges), with no previous
        mask: ``(low_res [B, 4, 4 crop, 4 crop]`` logits over the crop, ``iou [B, 4]``,
        ``origins [B, 2]`` each crop's first cell ``(x, y)``). The upscaling mixes no cells
        and the image's own updates attend to the prompt's tokens only: what changes from
        :meth:`forward` is that the tokens no longer see the image far from the click."""
        b = point_coords.shape[0]
        cells = torch.floor(point_coords / (IMAGE_SIZE / GRID)).long()
        origins = (cells - crop // 2).clamp(0, GRID - crop)
        rows = origins[:, 1, None] + torch.arange(crop)  # [B, crop]
        cols = origins[:, 0, None] + torch.arange(crop)
        pick = (rows[:, :, None] * GRID + cols[:, None, :]).reshape(b, -1)  # [B, crop * crop]
        src = image_embeddings + self.no_mask_embed[None, :, None, None]
        pe = self.dense_pe()
        dim = src.shape[1]
        src, pe = (t.flatten(2)[0][:, pick].permute(1, 0, 2).reshape(b, dim, crop, crop) for t in (src, pe))
        coords = torch.stack([point_coords, torch.zeros_like(point_coords)], 1)
        labels = torch.tensor([1.0, -1.0]).expand(b, 2)
        masks, iou = self._decode(src, pe, self.embed_points(coords, labels))
        return masks, iou, origins

    def _decode(
        self, src: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The two-way transformer and the heads on image features ``src [1 or B, 256, h, w]``
        (the embedding plus the dense prompt) at positions ``image_pe [1 or B, 256, h, w]``,
        for the sparse prompt ``[B, N, 256]``: ``(masks [B, 4, 4h, 4w], iou [B, 4])``."""
        (b, _, _), (_, c, h, w) = sparse.shape, src.shape
        tokens = torch.cat([self.output_tokens[None].expand(b, -1, -1), sparse], dim=1)
        hs, src = self.transformer(src, image_pe, tokens)
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        mask_tokens = hs[:, 1 : 1 + MASK_TOKENS]
        hyper = torch.stack(
            [mlp(mask_tokens[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1
        )
        masks = (hyper @ upscaled.flatten(2)).reshape(b, MASK_TOKENS, *upscaled.shape[-2:])
        return masks, self.iou_prediction_head(hs[:, 0])

    @classmethod
    def from_onnx(cls, path: str | Path) -> SamDecoder:
        """The decoder with the weights of the SAM-format ONNX decoder at ``path``;
        ValueError naming what the file lacks when it is not one."""
        import onnx
        from onnx import numpy_helper

        loaded = onnx.load(str(path))
        graph = loaded.graph
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        model = cls()
        metadata = {p.key: p.value for p in loaded.metadata_props}
        model.iou_offsets = parse_offsets(metadata.get(OFFSETS_KEY), str(path))
        wanted = model.state_dict()
        state: dict[str, list] = {}
        for name, key, row, transpose in _weight_map(graph, arrays):
            value = arrays[name].T if transpose else arrays[name]
            state.setdefault(key, [None] * len(wanted[key]) if row is not None else [None])
            state[key][0 if row is None else row] = value
        missing = sorted(k for k in wanted if k not in state or any(v is None for v in state[k]))
        if missing:
            raise ValueError(f"{path}: not a SAM-format decoder, it lacks weights for {missing[:5]}")
        flat = {k: np.concatenate([np.reshape(v, -1) for v in state[k]]) for k in wanted}
        model.load_state_dict({k: torch.from_numpy(flat[k]).reshape(wanted[k].shape) for k in wanted})
        return model

    def write_onnx(self, template: str | Path, out: str | Path) -> Path:
        """The ONNX decoder ``template`` with this decoder's weights in place of its own (and
        its ``iou_offsets`` in the metadata), written to ``out``: the same graph, inputs,
        outputs and speed."""
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(template))
        graph = model.graph
        arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        ours = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        for name, key, row, transpose in _weight_map(graph, arrays):
            value = ours[key] if row is None else ours[key][row]
            value = value.T if transpose else value
            init = next(t for t in graph.initializer if t.name == name)
            init.CopyFrom(
                numpy_helper.from_array(value.reshape(arrays[name].shape).astype(arrays[name].dtype), name)
            )
        kept = [p for p in model.metadata_props if p.key != OFFSETS_KEY]
        del model.metadata_props[:]
        model.metadata_props.extend(kept)
        if self.iou_offsets:
            model.metadata_props.add(key=OFFSETS_KEY, value=dump_offsets(self.iou_offsets))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(out))
        return out


def _weight_map(graph, arrays: dict) -> list[tuple[str, str, int | None, bool]]:
    """``(initializer, state-dict key, row of the key's tensor or None, transposed?)`` for
    every weight of the ONNX decoder ``graph``."""
    out = []
    for node in graph.node:  # the unnamed initializers, by the node that uses them
        for name in node.input:
            if name.startswith("onnx::") and name in arrays:
                key = _anonymous_key(node, arrays[name])
                if key is not None:  # MatMul computes x @ W: a Linear's weight is W transposed
                    out.append((name, key, None, node.op_type == "MatMul"))
    for name in arrays:
        for prefix in ("mask_decoder.", "model.prompt_encoder."):
            if name.startswith(prefix):
                key, row = name.removeprefix(prefix), None
                if key.startswith("point_embeddings."):  # point_embeddings.i.weight: row i of ours
                    key, row = "point_embeddings", int(key.split(".")[1])
                key = RENAMED.get(key, key)
                out.append((name, key, row, False))
    return out


RENAMED = {
    "pe_layer.positional_encoding_gaussian_matrix": "gaussian",
    "not_a_point_embed.weight": "not_a_point_embed",
}


def _anonymous_key(node, value: np.ndarray) -> str | None:
    """The state-dict key of an unnamed ONNX initializer, from the node that uses it."""
    if node.op_type == "MatMul" and node.name.startswith("/transformer/"):
        return node.name[1:].rsplit("/", 1)[0].replace("/", ".") + ".weight"
    if node.op_type in ("Mul", "Add") and node.name.startswith(("/mask_downscaling/", "/output_upscaling/")):
        return f"{node.name.split('/')[2]}.{'weight' if node.op_type == 'Mul' else 'bias'}"  # a LayerNorm2d
    if node.op_type == "Mul" and value.shape == (1, EMBED_DIM, 1, 1):
        return "no_mask_embed"
    if node.op_type == "Expand" and value.shape == (1, 1 + MASK_TOKENS, EMBED_DIM):
        return "output_tokens"
    return None


__all__ = ["SamDecoder"]
