"""The prototype head: mean-pooled sentence embeddings scored by cosine against one vector per intent.

Sentence encoders such as all-MiniLM-L6-v2 were trained so that the mean of their token
states is a good sentence embedding; the usual sequence-classification head reads the
first token instead and has to relearn that geometry from the few examples a rare intent
has. Here the logits are ``SCALE * cos(mean_pool(text), w_intent) + b_intent``, and each
``w_intent`` starts at the mean embedding of the intent's training examples, so a rare
intent starts where its examples are.

This file depends only on torch and transformers: it is copied into every saved model
folder, so ``AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)`` and ``transformers.pipeline`` load the model without intentbal.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

SCALE = 20.0  # cosine logits span [-20, 20]: sharp enough for a softmax over ~100 intents


class IntentbalConfig(PretrainedConfig):
    """The encoder's own config (as a dict) plus the head's scale and the intents."""

    model_type = "intentbal-prototype"

    def __init__(self, encoder: dict[str, Any] | None = None, scale: float = SCALE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder or {}
        self.scale = scale

    def encoder_config(self) -> PretrainedConfig:
        settings = dict(self.encoder)
        return AutoConfig.for_model(settings.pop("model_type"), **settings)


class IntentbalPrototypeClassifier(PreTrainedModel):
    """Any Hugging Face encoder, mean pooling, and a cosine head with a bias per intent."""

    config_class = IntentbalConfig
    base_model_prefix = "intentbal"
    main_input_name = "input_ids"
    no_weight_decay = ("classifier.weight",)  # only its direction counts: decay would just raise its step size

    def __init__(self, config: IntentbalConfig) -> None:
        super().__init__(config)
        encoder_config = config.encoder_config()
        if config.num_labels is None:
            raise ValueError("IntentbalConfig needs id2label: the head has one vector per intent")
        self.set_encoder(AutoModel.from_config(encoder_config))
        self.classifier = torch.nn.Linear(encoder_config.hidden_size, config.num_labels)
        self.post_init()

    def set_encoder(self, encoder: torch.nn.Module, modality: str | None = None) -> None:
        """Use ``encoder``, without the first-token pooler some models carry: mean pooling never
        uses it, and parameters without gradients stall distributed training. ``modality`` is
        transformers' (text only here)."""
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None  # type: ignore[assignment]  # torch types submodules as Module; None removes it
        self.encoder = encoder

    def _init_weights(self, module: Any) -> None:
        classifier = getattr(self, "classifier", None)
        if classifier is not None and module is classifier:
            torch.nn.init.normal_(module.weight, std=0.02)
            torch.nn.init.zeros_(module.bias)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the last hidden states over the real (unpadded) tokens."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        with torch.autocast(device_type=hidden.device.type, enabled=False):  # a bf16 sum over tokens loses digits
            hidden = hidden.float()
            mask = attention_mask.unsqueeze(-1).float()
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)

    def score(self, embeddings: torch.Tensor, *, normalised: bool = False) -> torch.Tensor:
        """Logits of sentence embeddings (as :meth:`embed` gives them, or points between them), in fp32
        whatever autocast the caller runs: ``scale * cos(e, w_intent) + b_intent``. ``normalised``:
        the rows already have unit length (normalising them twice would add rounding)."""
        # The head runs in fp32: in bf16 a logit near SCALE carries only about 0.1 of resolution.
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            pooled = embeddings.float()
            if not normalised:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            weight = torch.nn.functional.normalize(self.classifier.weight.float(), dim=-1)
            return self.config.scale * pooled @ weight.T + self.classifier.bias.float()

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        """Logits of each text, in fp32 whatever autocast the caller runs."""
        if input_ids is None:
            raise ValueError("input_ids are required: the head pools the encoder's token states")
        logits = self.score(self.embed(input_ids, attention_mask))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)


def register() -> None:
    """Make ``AutoConfig`` and ``AutoModelForSequenceClassification`` (so ``transformers.pipeline``)
    load folders of this head with this code, without ``trust_remote_code``. ``intentbal.register()``
    and intentbal's own loaders call it; the copy in a model folder never does."""
    from transformers import AutoModelForSequenceClassification

    AutoConfig.register(IntentbalConfig.model_type, IntentbalConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(IntentbalConfig, IntentbalPrototypeClassifier, exist_ok=True)


# save_pretrained then copies this file beside the weights and writes config.json's auto_map.
IntentbalConfig.register_for_auto_class()
IntentbalPrototypeClassifier.register_for_auto_class("AutoModelForSequenceClassification")
