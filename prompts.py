"""The prompt side of GLASS §4 "Conditional image generation": a captioner describes a real image, a POS tagger
picks its nouns, the nouns that name a class (with plurals and synonyms) become the prompt's class list, and the
prompt is P = "caption; c1 c2 …" (the Dataset Diffusion format). pseudo_gt.py generates from P and reads the class
maps from the diffusion model's attention.

    vocab = coco_vocabulary()                                   # COCO's 80 classes, plurals, synonyms
    mention = find_classes("two men riding bikes", vocab)       # classes ['person', 'bicycle'], and the nouns
    build_prompt("two men riding bikes", mention.classes)       # 'two men riding bikes; person bicycle'

The tagger is NLTK's when its data is installed, else an offline lexicon path (tested); the captioner is BLIP-2 in
the paper preset, the scene's own caption in the toy world. Checked by tests/test_pseudo_gt.py.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Optional

import torch

ROOT = Path(__file__).resolve().parent

IRREGULAR_PLURALS = {"person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
                     "knife": "knives", "sheep": "sheep", "skis": "skis", "calf": "calves", "cattle": "cattle",
                     "people": "people", "lady": "ladies", "pony": "ponies", "puppy": "puppies", "kid": "kids"}


def plural(word: str) -> str:
    """English plural of a (possibly multi-word) noun; only the last word changes."""
    *head, last = word.split(" ")
    if last in IRREGULAR_PLURALS:
        p = IRREGULAR_PLURALS[last]
    elif last.endswith("sign"):
        p = last + "s"
    elif re.search(r"(s|x|z|ch|sh)$", last):
        p = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return " ".join(head + [p])


@dataclass
class Vocabulary:
    """The classes a prompt may name, with synonyms (surface word → class)."""
    classes: tuple
    synonyms: dict = field(default_factory=dict)

    def surface_forms(self) -> dict:
        """Every surface form (singular and plural) → class, longest first so "traffic light" beats "light"."""
        forms = {}
        for word, cls in [(c, c) for c in self.classes] + list(self.synonyms.items()):
            forms[word] = cls
            forms.setdefault(plural(word), cls)
        return dict(sorted(forms.items(), key=lambda kv: -len(kv[0].split())))


def coco_vocabulary() -> Vocabulary:
    """COCO's 80 classes and the caption words that name them (man/woman/people → person, bike → bicycle)."""
    data = json.loads((ROOT / "coco_vocabulary.json").read_text(encoding="utf-8"))
    return Vocabulary(tuple(data["classes"]), data["synonyms"])


def toy_vocabulary() -> Vocabulary:
    from toy import world
    return Vocabulary(world.CLASSES, dict(world.SYNONYMS))


class ClassMention(NamedTuple):
    classes: list  # distinct class names, in order of first mention
    words: list  # the caption words (or compounds) that named them
    has_classes: bool  # False: the caption names no class (flagged, no semantic target)
    tagger: str  # "nltk" or "lexicon": which noun finder ran


@functools.lru_cache(maxsize=1)
def _nltk_tagger():
    """NLTK's perceptron tagger if its data is installed locally, else None (never downloads)."""
    try:
        import nltk
        nltk.data.find("taggers/averaged_perceptron_tagger_eng")
        from nltk.tag import PerceptronTagger
        return PerceptronTagger()
    except (LookupError, ImportError, OSError):
        return None


def find_classes(caption: str, vocabulary: Vocabulary, use_nltk: Optional[bool] = None) -> ClassMention:
    """The classes a caption names: longest-match n-grams against the vocabulary's singular/plural surface forms.

    With NLTK (`use_nltk=None` uses it when its tagger data is installed, True requires it) a match counts only
    if its last word is tagged as a noun (NN*), so "a man boxes" does not name a box. Without it (the offline
    path) the vocabulary itself serves as the noun lexicon. Never raises on a caption without classes.
    """
    tagger = _nltk_tagger() if use_nltk is not False else None
    if use_nltk and tagger is None:
        raise RuntimeError("NLTK tagger data 'averaged_perceptron_tagger_eng' is not installed; install it with "
                           "python -m nltk.downloader averaged_perceptron_tagger_eng, or use use_nltk=False")
    words = re.findall(r"[a-z]+", caption.lower())
    tags = [t for _, t in tagger.tag(words)] if tagger is not None and words else None
    forms = vocabulary.surface_forms()
    max_n = max(len(f.split()) for f in forms)
    classes, named, i = [], [], 0
    while i < len(words):
        for n in range(min(max_n, len(words) - i), 0, -1):
            phrase = " ".join(words[i:i + n])
            if phrase in forms and (tags is None or tags[i + n - 1].startswith("NN")):
                if forms[phrase] not in classes:
                    classes.append(forms[phrase])
                named.append(phrase)
                i += n
                break
        else:
            i += 1
    return ClassMention(classes, named, bool(classes), "nltk" if tagger is not None else "lexicon")


def class_id_matrix(class_lists: list, vocabulary: Vocabulary) -> torch.Tensor:
    """(B, C_max) long mask ids (class index + 1) of each prompt's classes, padded with 0 (never chosen)."""
    c_max = max([len(c) for c in class_lists] + [1])
    ids = torch.zeros(len(class_lists), c_max, dtype=torch.long)
    for r, names in enumerate(class_lists):
        ids[r, :len(names)] = torch.tensor([vocabulary.classes.index(n) + 1 for n in names], dtype=torch.long)
    return ids


# Dataset Diffusion's negative prompt (gen_data.py), the words as they give them: the paper preset generates with it
DATASET_DIFFUSION_NEGATIVE = (
    "ugly, tiling, poorly drawn hands, poorly drawn feet, poorly drawn face,out of frame, extra limbs, disfigured, "
    "deformed, body out of frame, bad anatomy,watermark, signature, cut off, low contrast, underexposed, overexposed, "
    "bad art, beginner, amateur, distorted face")


def build_prompt(caption: str, classes: list) -> str:
    """P = caption + "; " + class names (the Dataset Diffusion format). Without classes, P is the caption."""
    caption = caption.strip().rstrip(".")
    return f"{caption} ; {' '.join(classes)}" if classes else caption


class Blip2Captioner:
    """BLIP-2 (`Blip2ForConditionalGeneration`) captions of PIL images; the paper preset's captioner."""

    def __init__(self, model_id: str = "Salesforce/blip2-opt-2.7b", device="cpu", dtype=torch.float32,
                 max_new_tokens: int = 30):
        from transformers import Blip2ForConditionalGeneration, Blip2Processor
        self.processor = Blip2Processor.from_pretrained(model_id)
        self.model = Blip2ForConditionalGeneration.from_pretrained(model_id, dtype=dtype).to(device).eval()
        self.device, self.dtype, self.max_new_tokens = device, dtype, max_new_tokens

    @torch.no_grad()
    def __call__(self, items: list) -> list:
        inputs = self.processor(images=[it["image"] for it in items], return_tensors="pt").to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens)
        return [t.strip() for t in self.processor.batch_decode(out, skip_special_tokens=True)]


# ---------------------------------------------------------------------------------------------------------------
# attention recording
# ---------------------------------------------------------------------------------------------------------------


def token_groups(tokenizer, names: list, max_length: Optional[int] = None) -> list:
    """Positions of each name's tokens in the probe prompt " ".join(names) (after BOS): a name that splits into
    several tokens gets all of them (their columns are averaged)."""
    groups, pos = [], 1
    for name in names:
        n = len(tokenizer(name, add_special_tokens=False).input_ids)
        groups.append(list(range(pos, pos + n)))
        pos += n
    if max_length is not None and pos >= max_length:
        raise ValueError(f"class names need {pos} tokens, more than the text encoder's {max_length}")
    return groups
