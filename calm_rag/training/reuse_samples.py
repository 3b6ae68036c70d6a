"""`--samples-from`: round 1 of a multiple-choice run reads an earlier run's samples instead of sampling.

Sampling is nearly all of a CALM round's cost before DPO (hours for a split on a CPU); voting, the target
threshold and the pair plan take seconds. Reading each training question's round-1 record from the
`samples.jsonl` an earlier `calm-rag train` run wrote lets a run vote again and plan its pairs again with its
own settings (--min-margin, --min-support, balanced voting, fewer --languages) without generating anything.
Rounds after the first sample as usual, from the model round 1 trained.

The file is checked before any model is loaded, each problem one line:
- it holds multiple-choice samples (open-question records have answer clusters, not letters), sampled in this
  run's mode. A record does not name its mode, but its answers show it: direct mode keeps each answer's exact
  letter distribution, cot keeps none;
- every training question has exactly one round-1 record, with --samples answers in each of this run's
  languages the question has. Languages this run does not use are dropped, so the vote counts this run's
  languages only;
- no record is of a question this run holds out with --dev: the dev questions must stay unseen;
- each answer was asked this dataset's question (its shown question text is the dataset's, in its language).
Records of questions this run does not select are ignored, and so are records of later rounds (sampled by an
adapter that run trained).

What sampled the records (model, adapter, engine, temperature, seed, option rotation) is not in them. Where the
file lies in a finished run's folder, that run's `manifest.json` says it, and `producer_warnings` says when its
model or start adapter is not this run's (a warning: training on another model's consensus is allowed, but it
is no longer self-alignment). This run's manifest records the file's path and sha256 (`describe`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from calm_rag.data.jsonl import read_records
from calm_rag.errors import CalmRagError
from calm_rag.questions import ParallelQuestion
from calm_rag.training.choice_round import QuestionSamples, samples_from_records
from calm_rag.training.config import CalmTrainConfig


def read_samples_file(path: Path, questions: Sequence[ParallelQuestion], dev: Sequence[ParallelQuestion],
                      config: CalmTrainConfig) -> list[QuestionSamples]:
    """Round 1's samples of `questions` (the training questions), in their order: each one's round-1 record,
    limited to this run's languages and voted with this run's settings. Built here, before any model loads, so a
    malformed record fails first and the round uses them as they are. `dev`: the questions held out with --dev."""
    records = read_records(path)
    for number, record in enumerate(records, start=1):
        _check_shape(record, f"{path}: record {number}")
    if any("clusters" in record for record in records):
        raise CalmRagError(f"{path} holds open-question samples (answer clusters); --samples-from needs the "
                           "samples.jsonl of a multiple-choice calm-rag train run")
    dev_ids = {question.id for question in dev}
    leaked = sorted({record["id"] for record in records} & dev_ids)
    if leaked:
        raise CalmRagError(f"{path} holds samples of {len(leaked)} of this run's --dev questions ({_listed(leaked)}); "
                           "the dev questions must stay unseen: use samples of a run that held them out")
    first = [record for record in records if record["round"] == 1]
    counts = Counter(record["id"] for record in first)
    missing = [question.id for question in questions if counts[question.id] == 0]
    if missing:
        raise CalmRagError(f"{path} has no round-1 record of {len(missing)} of the {len(questions)} training "
                           f"questions ({_listed(missing)}); give the samples of a run over the same questions")
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        raise CalmRagError(f"{path} has several round-1 records of {len(repeated)} questions ({_listed(repeated)})")
    by_id = {record["id"]: record for record in first}
    chosen = [_fitted(by_id[question.id], question, config, path) for question in questions]
    try:  # anything missing or of the wrong type fails here, not after loading
        return samples_from_records(questions, chosen, config, str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CalmRagError(f"{path}: malformed sample record ({type(error).__name__}: {error})") from None


def producer_warnings(path: Path, config: CalmTrainConfig, adapter: Path | str | None) -> list[str]:
    """What differs between the run that sampled `path` (its folder's manifest.json, if any) and this one."""
    try:
        manifest = json.loads((path.parent / "manifest.json").read_text(encoding="utf-8"))
        model, start = manifest["config"]["model"], manifest.get("start_adapter")
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no manifest beside the file (or not a run's): nothing to compare with
    warnings = []
    if model != config.model:
        warnings.append(f"{path} was sampled by {model}, this run trains {config.model}: the pairs are "
                        "another model's consensus, not this model's own")
    theirs, mine = (Path(start).resolve() if start else None), (Path(adapter).resolve() if adapter else None)
    if theirs != mine:
        warnings.append(f"{path} was sampled starting from adapter {start}, this run starts from {mine}")
    return warnings


def describe(path: Path) -> dict[str, Any]:
    """What the manifest's `source` records of the samples file."""
    return {"samples_from": str(path.resolve()), "samples_hash": hashlib.sha256(path.read_bytes()).hexdigest()}


def _check_shape(record: dict[str, Any], where: str) -> None:
    """The fields every sample record has: an id, a round, and lists of answers by language."""
    languages = record.get("languages")
    ok = (isinstance(record.get("id"), str) and isinstance(record.get("round"), int)
          and isinstance(languages, dict)
          and all(isinstance(items, list) and all(isinstance(item, dict) for item in items)
                  for items in languages.values()))
    if not ok:
        raise CalmRagError(f"{where} is not a calm-rag sample record (needs id, round and languages: lists of "
                           "answers by language)")


def _fitted(record: dict[str, Any], question: ParallelQuestion, config: CalmTrainConfig, path: Path
            ) -> dict[str, Any]:
    """`record` limited to this run's languages, checked against the question and this run's mode and K."""
    wanted = [lang for lang in config.languages if lang in question.versions]
    absent = [lang for lang in wanted if lang not in record["languages"]]
    if absent:
        raise CalmRagError(f"{path}: the record of {question.id} has no answers in {', '.join(absent)}; this run "
                           f"samples in {', '.join(wanted)} (--languages)")
    kept = {lang: items for lang, items in record["languages"].items() if lang in wanted}
    for lang, items in kept.items():
        if len(items) != config.samples:
            raise CalmRagError(f"{path}: the record of {question.id} has {len(items)} answer"
                               f"{'' if len(items) == 1 else 's'} in {lang}, this run takes --samples {config.samples}")
        modes = {"direct" if isinstance(item.get("distribution"), dict) else "cot" for item in items}
        if modes != {config.mode}:
            sampled = "/".join(sorted(modes))
            raise CalmRagError(f"{path} was sampled in {sampled} mode (direct answers keep their letter "
                               f"distribution, cot answers none); this run's --mode is {config.mode}")
        text = question.versions[lang].question
        if any(not isinstance(item.get("shown"), dict) or item["shown"].get("question") != text for item in items):
            raise CalmRagError(f"{path}: the answers of {question.id} in {lang} were asked another question than "
                               "this dataset's; give the samples of a run on the same dataset")
    return {**record, "languages": kept}


def _listed(ids: Sequence[str], shown: int = 3) -> str:
    return ", ".join(ids[:shown]) + (", ..." if len(ids) > shown else "")
