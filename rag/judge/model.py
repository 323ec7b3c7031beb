"""The judge's network: multilingual-e5-small read as a cross-encoder, question and sentence in one
pass, mean-pooled, one logit. Only the top layers and the head are trained; the rest is the
installed e5 as is, so what ships is those layers alone."""
from __future__ import annotations

from pathlib import Path

import torch


class CrossEncoder(torch.nn.Module):
    def __init__(self, base: Path, trained_layers: int):
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(str(base))
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        self.trained_layers = trained_layers
        layers = self.encoder.config.num_hidden_layers
        self.trained_prefixes = tuple(f"encoder.encoder.layer.{i}." for i in range(layers - trained_layers, layers)) + ("head.",)
        for name, param in self.named_parameters():
            param.requires_grad = name.startswith(self.trained_prefixes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.head(pooled).squeeze(-1)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What the installed e5 does not hold: the trained layers and the head."""
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k.startswith(self.trained_prefixes)}

    def load_trained(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.trained_state())
        if set(state) != expected:
            raise ValueError(f"judge weights hold {len(state)} tensors, expected {len(expected)} (layers {self.trained_layers})")
        self.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
