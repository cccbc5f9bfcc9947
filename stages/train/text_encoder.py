"""Frozen text encoder for the flow model: any Hugging Face text model, or an offline tiny random CLIP for tests.

`TextEncoder(captions) -> (tokens [B, L, D], token_mask [B, L], pooled [B, D])`. The default is the CLIP ViT-L/14
text tower (openai/clip-vit-large-patch14, as in Stable Diffusion 1.5). "tiny-random" builds a 2-layer CLIP text
model with a character-level tokenizer in code: no download, random weights (a stand-in, not a language model).
"""

from __future__ import annotations

import string

import torch
from torch import nn

TINY_RANDOM = "tiny-random"
_TINY_SEED = 1234


def tiny_tokenizer(max_length: int):
    """A character-level fast tokenizer built in code (lower-case letters, digits, punctuation)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<bos>", "<eos>"]
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {token: i for i, token in enumerate(specials + symbols + ["▁"])}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "▁")])
    tokenizer.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def tiny_clip(max_length: int):
    """(tokenizer, CLIPTextModel) with 2 layers of width 64, seeded random weights."""
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = tiny_tokenizer(max_length)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        projection_dim=64,
    )
    fork = torch.random.fork_rng(devices=[])
    with fork:
        torch.manual_seed(_TINY_SEED)
        model = CLIPTextModel(config)
    return tokenizer, model


def pretrained_text_model(name: str):
    """(tokenizer, text model) for a Hugging Face id: CLIP gets its text tower, encoder-decoders their encoder."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModel

    tokenizer = AutoTokenizer.from_pretrained(name)
    config = AutoConfig.from_pretrained(name)
    if config.model_type == "clip":
        return tokenizer, CLIPTextModel.from_pretrained(name)
    model = AutoModel.from_pretrained(name)
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()
    return tokenizer, model


class TextEncoder(nn.Module):
    """Frozen text encoder; outputs per-token features, their mask and a pooled vector."""

    def __init__(self, name: str, max_length: int = 77):
        super().__init__()
        self.name = name
        self.max_length = max_length
        if name == TINY_RANDOM:
            self.tokenizer, self.model = tiny_clip(max_length)
        else:
            self.tokenizer, self.model = pretrained_text_model(name)
        self.model.requires_grad_(False)
        self.model.eval()
        self.width = int(self.model.config.hidden_size)

    def train(self, mode: bool = True):  # always frozen in eval mode
        return super().train(False)

    @torch.no_grad()
    def forward(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            list(captions), padding="max_length", truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        input_ids = batch["input_ids"].to(device)
        mask = batch["attention_mask"].to(device)
        output = self.model(input_ids=input_ids, attention_mask=mask)
        tokens = output.last_hidden_state
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            weights = mask[..., None].to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return tokens.float(), mask.bool(), pooled.float()
