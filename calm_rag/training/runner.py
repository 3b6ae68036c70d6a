"""`train_calm` and `train_on_pairs`: whole training runs, resumable, written atomically.

A run's work folder holds one folder per round:

    work/round-1/samples.chunks/ sampled responses, one file per finished chunk of questions (see sampling_chunks.py)
    work/round-1/samples.jsonl   all sampled responses (the chunks joined, once sampling finishes; in round 1 with
                                 --samples-from, an earlier run's answers voted again: see reuse_samples.py)
    work/round-1/pairs.jsonl     preference pairs (after translation, in cot mode)
    work/round-1/checkpoints/    Trainer checkpoints (adapter, optimizer, scheduler, RNG)
    work/round-1/dev.jsonl       dev-split accuracy before training and after each DPO epoch (see dev_check.py;
                                 none with --no-dev-check)
    work/round-1/adapter/        the round's trained adapter
    work/round-1/round.json      the round's metrics: written last, it marks the round complete

`--resume` skips complete rounds, reloads cached samples (or the finished chunks) and pairs instead of
recomputing them, and continues DPO from the newest checkpoint. Round n+1 samples with round n's adapter and keeps
training it, with round n's adapter as the DPO reference (TRL copies it into a frozen adapter).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from calm_rag.config import load_settings
from calm_rag.data.dev_split import split_dev
from calm_rag.data.jsonl import read_json, read_records, write_json, write_jsonl
from calm_rag.data.open import is_open_dataset, load_open_dataset
from calm_rag.data.parallel import dataset_hash, load_parallel_dataset
from calm_rag.errors import CalmRagError
from calm_rag.generation.base import Generator
from calm_rag.generation.engines import load_generator
from calm_rag.generation.loading import base_names, check_adapter_base
from calm_rag.generation.transformers_engine import TransformersGenerator
from calm_rag.generation.translation import Translator
from calm_rag.indexes.encoder import load_encoder
from calm_rag.progress import StageProgress
from calm_rag.questions import ParallelQuestion
from calm_rag.training import modeling
from calm_rag.training.artifacts import RunFolder, copy_adapter, library_versions
from calm_rag.training.config import DPO_MEMORY_SETTINGS, CalmTrainConfig
from calm_rag.training.dev_check import DevLog, dev_callback
from calm_rag.training.dpo import train_dpo
from calm_rag.training.pairs_file import load_pairs_file, select_pairs
from calm_rag.training.plot import plot_training
from calm_rag.training.report import (
    chosen_letter,
    letter_warnings,
    round_metrics,
    target_letters,
)
from calm_rag.training.reuse_samples import describe, producer_warnings, read_samples_file
from calm_rag.training.rounds import ChoiceRound, OpenRound, RoundKind, Samples
from calm_rag.training.sampling_chunks import sample_in_chunks
from calm_rag.voting import CachedEncoder

Notify = Callable[[str], None]
"""Called with each warning or note as it happens (they are also in the summary)."""


@dataclass
class TrainSummary:
    out: Path
    resumed: bool
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return list(self.metrics["warnings"])

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "resumed": self.resumed, "warnings": self.warnings, "notes": self.notes,
                "metrics": self.metrics}


class _Run:
    """State shared by the rounds of one run: the folder, the (lazily loaded) model, timings, messages."""

    def __init__(self, config: CalmTrainConfig, folder: RunFolder, resolved: Any, adapter: Path | None,
                 progress: StageProgress | None, notify: Notify | None, dev: Sequence[ParallelQuestion] = ()) -> None:
        self.config = config
        self.dev = dev
        """Held-out questions, measured before training and after each DPO epoch unless `config.dev_check` is off
        (see dev_check.py)."""
        self.folder = folder
        self.resolved = resolved
        self.adapter = adapter
        self.progress = progress
        self.notify = notify
        self.loaded: modeling.LoadedModel | None = None
        self.sampler: tuple[int, Generator] | None = None
        """(round, generator) of a non-transformers sampling engine while a round samples."""
        self.notes: list[str] = []
        self.started = time.monotonic()
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def round_dir(self, number: int) -> Path:
        return self.folder.work / f"round-{number}"

    def say(self, message: str) -> None:
        self.notes.append(message)
        if self.notify:
            self.notify(message)

    def latest_adapter(self, number: int) -> Path | None:
        """The adapter the model carries before round `number`: the newest trained one, else the start one."""
        previous = [self.round_dir(n) / "adapter" for n in range(1, number)]
        return next((path for path in reversed(previous) if path.is_dir()), self.adapter)

    def model(self, number: int) -> modeling.LoadedModel:
        """The model as it stands before round `number`: the base plus the newest trained adapter."""
        if self.loaded is None:
            self.loaded = modeling.load_model(self.resolved, device=self.config.device, dtype=self.config.dtype)
            latest = self.latest_adapter(number)
            if latest is not None:
                modeling.attach_adapter(self.loaded, latest)
        return self.loaded

    def generator(self, number: int) -> Generator:
        """What samples and translates in round `number`: the training model itself, or the configured
        engine running the same base with the same adapter (loaded once per round, see `release`)."""
        if self.config.engine != "transformers":
            if self.sampler is None or self.sampler[0] != number:
                self.release()
                assert self.config.model is not None
                self.sampler = (number, load_generator(self.config.model, self.config.engine_config(),
                                                       adapter=self.latest_adapter(number)))
            return self.sampler[1]
        loaded = self.model(number)
        if not getattr(loaded.tokenizer, "chat_template", None):
            raise CalmRagError(f"{loaded.base_id} has no chat template; CALM samples and trains on chat prompts, "
                               "so it needs an instruct model")
        return TransformersGenerator(loaded.model, loaded.tokenizer, name=loaded.base_id)

    def release(self) -> None:
        """Stop the sampling engine (a llama.cpp server) before DPO needs the memory."""
        if self.sampler is not None:
            self.sampler[1].close()
            self.sampler = None

    def train(self, number: int, pairs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """DPO on `pairs`; saves the round's adapter and returns the trainer's log history, timing and, with
        a dev split, its measurements."""
        loaded = self.model(number)
        directory = self.round_dir(number)
        began = time.monotonic()
        dev = DevLog(directory / "dev.jsonl")
        measured = self.dev if self.config.dev_check else ()  # --no-dev-check: held out, measured by eval later
        callbacks = [dev_callback(measured, self.config, loaded.tokenizer, dev, stage=f"round {number}",
                                  progress=self.progress, notify=self.say)] if measured else []
        loaded.model, result = train_dpo(loaded.model, loaded.tokenizer, pairs, self.config,
                                         directory / "checkpoints", progress=self.progress,
                                         stage=f"round {number}: DPO", callbacks=callbacks,
                                         base_id=loaded.base_id)
        if result.resumed_from:
            self.say(f"round {number}: DPO resumed from {Path(result.resumed_from).name}")
        modeling.save_adapter(loaded, directory / "adapter")
        return {"log_history": result.log_history, "training_s": time.monotonic() - began, "dev": dev.entries}

    def warn(self, number: int, warnings: Sequence[str]) -> None:
        """Say each pre-training warning (a dominant letter) while there is still time to stop."""
        for warning in warnings:
            if self.notify:
                self.notify(f"round {number}: {warning}")

    def finish(self, rounds: list[dict[str, Any]], source: dict[str, Any], command: str,
               languages: Sequence[str], mode: str) -> TrainSummary:
        """Write the artifacts into the partial folder and move it into place."""
        partial = self.folder.partial
        trained = [m["round"] for m in rounds if m["trained"]]
        copy_adapter(self.round_dir(trained[-1]) / "adapter", partial)
        pairs = [record for m in rounds for record in self._cached(m["round"], "pairs.jsonl")]
        write_jsonl(partial / "pairs.jsonl", pairs)
        if command == "train":
            write_jsonl(partial / "samples.jsonl",
                        [record for m in rounds for record in self._cached(m["round"], "samples.jsonl")])
        warnings = [f"round {m['round']}: {w}" for m in rounds for w in m.get("warnings", [])]
        metrics = {"mode": mode, "languages": list(languages), "adapter_round": trained[-1],
                   "rounds": rounds, "warnings": warnings}
        if self.dev:
            metrics["dev_questions"] = [question.id for question in self.dev]
        write_json(partial / "metrics.json", metrics)
        plot_training(rounds, partial / "training.png")
        write_json(partial / "manifest.json", {
            "command": command, "config": self.config.to_dict(), "source": source,
            "model": modeling.describe(self.resolved), "start_adapter": str(self.adapter) if self.adapter else None,
            "libraries": library_versions(), "resumed": self.folder.resumed,
            "started_at": self.started_at, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "timings": {"total_s": time.monotonic() - self.started,
                        "rounds": {str(m["round"]): m.get("timings", {}) for m in rounds}},
            "adapter": "adapter_config.json and adapter_model.safetensors at the top of this folder",
        })
        out = self.folder.finalize()
        return TrainSummary(out, self.folder.resumed, metrics, self.notes)

    def _cached(self, number: int, name: str) -> list[dict[str, Any]]:
        path = self.round_dir(number) / name
        return read_records(path) if path.is_file() else []


def _prepare(config: CalmTrainConfig, out: Path | str, adapter: Path | str | None, resume: bool, overwrite: bool,
             ) -> tuple[CalmTrainConfig, Any, Path | None, RunFolder]:
    """Resolve the model and check the start adapter before any work; then claim the output folder."""
    config = config if config.model else replace(config, model=load_settings().generator)
    assert config.model is not None
    resolved = modeling.resolve(config.model)
    start = Path(adapter) if adapter is not None else None
    if start is not None:
        check_adapter_base(start, base_names(resolved))
    return config, resolved, start, RunFolder.open(out, resume=resume, overwrite=overwrite)


def _spec(command: str, config: CalmTrainConfig, source: dict[str, Any], resolved: Any, start: Path | None
          ) -> dict[str, Any]:
    return {"command": command, "config": config.to_dict(), "source": source, "model": modeling.describe(resolved),
            "start_adapter": str(start) if start else None}


def _check_spec(folder: RunFolder, spec: dict[str, Any]) -> list[str]:
    """`RunFolder.check_run_spec` with the training-specific exceptions: DPO memory settings may change
    before a round has finished, and settings newer than the recorded run pass at their defaults."""
    return folder.check_run_spec(spec, adjustable=[f"config.{name}" for name in DPO_MEMORY_SETTINGS],
                                 defaults={f"config.{key}": value for key, value in CalmTrainConfig.defaults().items()})


def _restart_dpo(run: _Run, adjusted: Sequence[str]) -> None:
    """Checkpoints made with other DPO memory settings cannot be continued: DPO restarts from the cached pairs."""
    if not adjusted:
        return
    for checkpoints in run.folder.work.glob("round-*/checkpoints"):
        shutil.rmtree(checkpoints)
    run.say(f"resuming with changed settings ({'; '.join(adjusted)}): samples and pairs are reused, "
            "DPO starts over")


def _cached_round(run: _Run, number: int, kind: RoundKind[Samples], given: Sequence[Samples] | None = None
                  ) -> tuple[list[Samples], list[dict[str, Any]], dict[str, Any]]:
    """The round's samples and pairs, from the cache when present; and how long each took. `given`: the
    round's samples read from `--samples-from` and voted with this run's settings (nothing is sampled then)."""
    directory = run.round_dir(number)
    timings: dict[str, Any] = {}
    samples_file, pairs_file = directory / "samples.jsonl", directory / "pairs.jsonl"
    if samples_file.is_file():
        samples = kind.reload(read_records(samples_file), str(samples_file))
        run.say(f"round {number}: reused the cached samples")
    elif given is not None:  # voted again with this run's settings, and kept so
        samples = list(given)
        write_jsonl(samples_file, [item.to_record(number) for item in samples])
        run.say(f"round {number}: samples read from {run.config.samples_from} (nothing sampled)")
    else:
        began = time.monotonic()
        records, reused = sample_in_chunks(kind, partial(run.generator, number), number, run.config, samples_file,
                                           run.progress)
        if reused:
            run.say(f"round {number}: reused {reused} sampled chunk{'s' if reused > 1 else ''}")
        samples = kind.reload(records, str(samples_file))
        timings["sampling_s"] = time.monotonic() - began
    if pairs_file.is_file():
        pairs = read_records(pairs_file)
    else:
        began = time.monotonic()
        pairs = kind.pair(samples, lambda requests: Translator(run.generator(number)).translate_many(requests), number)
        write_jsonl(pairs_file, pairs)
        timings["pairs_s"] = time.monotonic() - began
    run.release()
    return samples, pairs, timings


def _load_questions(dataset: Path | str, config: CalmTrainConfig, split: str | None, limit: int | None
                    ) -> tuple[list[ParallelQuestion], list[ParallelQuestion], RoundKind[Any], CalmTrainConfig]:
    """The selected questions, the dev questions held out of them, and the round implementation for their kind
    (a folder of records without choices holds open questions); open questions also fix the embedder."""
    if not is_open_dataset(dataset):
        questions = load_parallel_dataset(dataset, config.languages, split, limit)
        train, dev = split_dev(questions, config.dev_questions)
        return questions, dev, ChoiceRound(train, config), config
    if config.mode != "cot":
        raise CalmRagError(f"{dataset} holds open questions (no options), and --mode {config.mode} needs option "
                           "letters; use --mode cot")
    if config.dev_questions:
        raise CalmRagError("--dev measures direct-mode accuracy on option letters; open questions have none")
    if config.samples_from:
        raise CalmRagError(f"--samples-from reads multiple-choice samples; {dataset} holds open questions")
    questions = load_open_dataset(dataset, config.languages, split=split, limit=limit)
    config = replace(config, embedder=config.embedder or load_settings().embedder)
    return questions, [], OpenRound(questions, config, CachedEncoder(load_encoder(config.embedder))), config


def train_calm(dataset: Path | str, out: Path | str, config: CalmTrainConfig, *, split: str | None = None,
               limit: int | None = None, adapter: Path | str | None = None, resume: bool = False,
               overwrite: bool = False, progress: StageProgress | None = None, notify: Notify | None = None
               ) -> TrainSummary:
    """The CALM loop on a parallel dataset: per round, sample -> vote -> threshold -> pairs -> LoRA-DPO.
    Multiple-choice questions vote on letters; open questions (no `choices`) vote by clustering the answers'
    meanings with the embedder (`config.embedder`)."""
    questions, dev, kind, config = _load_questions(dataset, config, split, limit)
    given = read_samples_file(config.samples_from, kind.questions, dev, config) if config.samples_from else None
    config, resolved, start, folder = _prepare(config, out, adapter, resume, overwrite)
    source: dict[str, Any] = {"dataset": str(Path(dataset).resolve()), "split": split, "limit": limit,
                              "questions": len(questions), "data_hash": dataset_hash(dataset, config.languages)}
    if config.samples_from:
        source.update(describe(config.samples_from))
    if dev:
        source["dev_questions"] = [question.id for question in dev]
    adjusted = _check_spec(folder, _spec("train", config, source, resolved, start))
    run = _Run(config, folder, resolved, start, progress, notify, dev)
    for warning in producer_warnings(config.samples_from, config, start) if config.samples_from else []:
        run.say(warning)
    _restart_dpo(run, adjusted)
    if split is None:
        run.say("no --split given: training on every question in the folder (test questions too, if it has any)")
    rounds: list[dict[str, Any]] = []
    for number in range(1, config.rounds + 1):
        marker = run.round_dir(number) / "round.json"
        if marker.is_file():
            rounds.append(read_json(marker))
        else:
            samples, pairs, timings = _cached_round(run, number, kind, given if number == 1 else None)
            if not pairs and number == 1:
                folder.discard()  # nothing was trained: leave nothing behind, like any other bad input
                raise CalmRagError(f"nothing to train: no preference pairs, because {kind.no_pairs_reason(samples)}")
            history: dict[str, Any] = {"log_history": [], "dev": []}
            if pairs:
                run.warn(number, kind.warnings(samples, pairs))
                history = run.train(number, pairs)
                timings["training_s"] = history["training_s"]
            metrics = kind.metrics(number, samples, pairs, history["log_history"])
            metrics.update(trained=bool(pairs), timings=timings)
            if dev:
                metrics["dev"] = history["dev"]
            write_json(marker, metrics)
            rounds.append(metrics)
        if not rounds[-1]["trained"]:
            run.say(f"round {number} produced no pairs; stopping with round {number - 1}'s adapter")
            break
    return run.finish(rounds, source, "train", config.languages, kind.label)


def train_on_pairs(pairs_file: Path | str, out: Path | str, config: CalmTrainConfig, *,
                   dataset: Path | str | None = None, split: str | None = None, limit: int | None = None,
                   min_margin: float | None = None, adapter: Path | str | None = None, resume: bool = False,
                   overwrite: bool = False, progress: StageProgress | None = None, notify: Notify | None = None
                   ) -> TrainSummary:
    """LoRA-DPO on preference pairs made elsewhere (one round, no sampling). `min_margin` keeps the pairs whose
    recorded soft-vote lead reaches it; with `config.dev_questions`, `dataset` (with the `split` and `limit`
    the pairs were sampled from) supplies the dev questions, held out exactly as `train_calm` holds them out,
    measured before training and after each epoch."""
    if config.rounds > 1:
        raise CalmRagError("--rounds > 1 needs a dataset to sample from; with --pairs the model trains once")
    if config.samples_from:
        raise CalmRagError("--samples-from replaces the sampling of a dataset run; --pairs samples nothing")
    if config.dev_questions and dataset is None:
        raise CalmRagError("--dev with --pairs needs the dataset the pairs were sampled from, to hold out the "
                           "same dev questions: calm-rag train DATASET --split ... --pairs FILE --dev N")
    if dataset is not None and not config.dev_questions:
        raise CalmRagError("with --pairs a dataset only supplies the --dev questions; give --dev N, or drop the "
                           "dataset")
    dev = (split_dev(load_parallel_dataset(dataset, config.languages, split, limit), config.dev_questions)[1]
           if dataset is not None else [])
    all_records = load_pairs_file(pairs_file)
    records = select_pairs(all_records, min_margin, {question.id for question in dev})
    config, resolved, start, folder = _prepare(config, out, adapter, resume, overwrite)
    source: dict[str, Any] = {"pairs_file": str(Path(pairs_file).resolve()), "pairs": len(records),
                              "pairs_hash": hashlib.sha256(Path(pairs_file).read_bytes()).hexdigest()}
    if min_margin is not None:
        source.update(min_margin=min_margin, pairs_in_file=len(all_records))
    if dev:
        source["dev_questions"] = [question.id for question in dev]
    adjusted = _check_spec(folder, _spec("train-pairs", config, source, resolved, start))
    run = _Run(config, folder, resolved, start, progress, notify, dev)
    _restart_dpo(run, adjusted)
    marker = run.round_dir(1) / "round.json"
    languages = sorted({str(record["lang"]) for record in records if record.get("lang")})
    if marker.is_file():
        metrics = read_json(marker)
    else:
        write_jsonl(run.round_dir(1) / "pairs.jsonl", records)
        run.warn(1, letter_warnings(target_letters(None, records), [chosen_letter(pair) for pair in records],
                                    config.letter_warn_share))
        history = run.train(1, records)
        metrics = round_metrics(1, None, records, languages, history["log_history"], config.letter_warn_share)
        metrics.update(trained=True, timings={"training_s": history["training_s"]})
        if dev:
            metrics["dev"] = history["dev"]
        write_json(marker, metrics)
    return run.finish([metrics], source, "train-pairs", languages, config.mode)
