"""Prompts that start alike on llama.cpp: the common start is evaluated once and restored into the other
slots (real llama.cpp servers on the tiny GGUF)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from calm_rag.generation.base import GenerationConfig
from calm_rag.generation.llamacpp_engine import LlamaCppServer
from calm_rag.generation.prefix_sharing import MIN_PREFIX_CHARS, PrefixSharer, prefix_groups, shared_prefix
from calm_rag.generation.server_client import ServerClient
from calm_rag.prompts import Passage, mcq_messages
from calm_rag.questions import Question, make_choices
from tests.generation.conftest import SERVED_NAME, SLOTS

PASSAGES = [Passage(f"Passage {number}: Carl Wilhelm Scheele fand den Sauerstoff 1773 in Uppsala. " * 6,
                    f"doc{number}", "de") for number in range(3)]
QUESTIONS = {"en": "When did Scheele discover oxygen?", "de": "Wann entdeckte Scheele Sauerstoff?",
             "zh": "舍勒是什么时候发现氧气的？"}


def rag_prompts(generator: Any, passages: list[Passage] = PASSAGES) -> list[str]:
    """One question with the same passages in three languages, rendered like `ask` renders them."""
    return [generator.render(mcq_messages(Question("q", lang, text, make_choices(["1773", "1774", "1777"])),
                                          "cot", passages, generator.special_tokens))
            for lang, text in QUESTIONS.items()]


OTHER_PASSAGES = [Passage(f"Absatz {number}: Joseph Priestley beschrieb das Gas 1774 in England. " * 6,
                          f"other{number}", "de") for number in range(3)]


def test_the_shared_start_ends_at_a_line_break_and_must_be_long() -> None:
    head = "x" * MIN_PREFIX_CHARS + "\n"
    assert shared_prefix([head + "Answer A", head + "Antwort B", head + "Answer A"]) == (head, 2)
    assert shared_prefix([head + "same", head + "same"]) == ("", 1)  # `n` samples share one prompt already
    assert shared_prefix(["y" * 50 + "\n" + "a", "y" * 50 + "\n" + "b"]) == ("", 2)  # too short to bother
    assert shared_prefix([head[:-1] + "a", head[:-1] + "b"]) == ("", 2)  # no line break in the shared start


def test_prompts_group_by_question_and_loners_run_together() -> None:
    first, second = "a" * MIN_PREFIX_CHARS + "\n", "b" * MIN_PREFIX_CHARS + "\n"
    prompts = [first + "en", second + "en", first + "de", "short", second + "de", "c" * (MIN_PREFIX_CHARS + 5),
               first + "en"]
    assert prefix_groups(prompts) == [[0, 2, 6], [1, 4], [3, 5]]
    assert prefix_groups([first + "en", first + "de", "short"]) == [[0, 1, 2]]  # one question: one call as before
    assert prefix_groups([first + "x", first + "x", second + "y"]) == [[0, 1, 2]]  # copies of one prompt share it


def test_the_prompts_of_one_question_start_with_the_same_passages(llamacpp_server: LlamaCppServer,
                                                                 tiny_transformers: Any) -> None:
    prompts = rag_prompts(tiny_transformers)
    prefix, distinct = shared_prefix(prompts)
    assert distinct == 3 and prefix.rstrip().endswith("</passages>") and prefix.count("<passage ") == 3


def test_restored_slots_evaluate_only_their_own_tail(llamacpp_server: LlamaCppServer,
                                                     tiny_transformers: Any) -> None:
    prompts = rag_prompts(tiny_transformers)
    client = ServerClient(llamacpp_server.url + "/v1", model=SERVED_NAME)
    try:
        assert PrefixSharer(client, SERVED_NAME, SLOTS).share(prompts) == 3
        prefix_tokens = len(client.post("/tokenize", {"content": shared_prefix(prompts)[0]}, root=True)["tokens"])

        def cached(slot: int) -> int:
            body = {"model": SERVED_NAME, "prompt": prompts[slot], "max_tokens": 1, "temperature": 0.0,
                    "id_slot": slot}
            return client.post("/completions", body)["usage"]["prompt_tokens_details"]["cached_tokens"]

        with ThreadPoolExecutor(3) as pool:  # each prompt pinned to a slot: 1 and 2 only had the restored cells
            found = list(pool.map(cached, range(3)))
        assert all(prefix_tokens - 2 <= count <= prefix_tokens for count in found), (found, prefix_tokens)
    finally:
        client.close()


def test_sharing_changes_no_output(tiny_pair: tuple[Path, Path], tiny_transformers: Any) -> None:
    from calm_rag.generation.engines import EngineConfig, load_generator

    with load_generator(str(tiny_pair[1]), EngineConfig(engine="llama.cpp", tokenizer=str(tiny_pair[0]),
                                                        slots=3, threads=1)) as generator:
        prompts = rag_prompts(generator)
        config = GenerationConfig(max_new_tokens=8, temperature=0)
        assert generator.generate(prompts, config) == tiny_transformers.generate(prompts, config)
        assert generator._prefixes is not None and generator._prefixes.enabled


def test_two_questions_in_one_call_share_their_passages_one_after_the_other(
        tiny_pair: tuple[Path, Path], tiny_transformers: Any, monkeypatch: Any) -> None:
    from calm_rag.generation.engines import EngineConfig, load_generator

    shared: list[int] = []
    share = PrefixSharer.share
    monkeypatch.setattr(PrefixSharer, "share", lambda self, prompts: shared.append(share(self, prompts)) or shared[-1])
    with load_generator(str(tiny_pair[1]), EngineConfig(engine="llama.cpp", tokenizer=str(tiny_pair[0]),
                                                        slots=3, threads=1)) as generator:
        first, second = rag_prompts(generator), rag_prompts(generator, OTHER_PASSAGES)
        prompts = [first[0], second[0], first[1], second[1], first[2], second[2]]  # interleaved, as a batch may be
        config = GenerationConfig(max_new_tokens=8, temperature=0)
        assert generator.generate(prompts, config) == tiny_transformers.generate(prompts, config)
        assert shared == [3, 3]  # each question's passages went into all three slots before its prompts ran


def test_sharing_can_be_turned_off(tiny_pair: tuple[Path, Path], tiny_transformers: Any) -> None:
    from calm_rag.generation.engines import EngineConfig, load_generator

    with load_generator(str(tiny_pair[1]), EngineConfig(engine="llama.cpp", tokenizer=str(tiny_pair[0]), slots=3,
                                                        threads=1, share_prefixes=False)) as generator:
        assert generator._prefixes is None and not generator.options.share_prefixes
        prompts = rag_prompts(generator)
        config = GenerationConfig(max_new_tokens=8, temperature=0)
        assert generator.generate(prompts, config) == tiny_transformers.generate(prompts, config)


def test_a_server_without_a_slot_folder_turns_sharing_off(tiny_pair: tuple[Path, Path],
                                                          tiny_transformers: Any) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(tiny_pair[1])
    params.model_alias = {SERVED_NAME}
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_parallel = 2
    params.n_ctx = 4096
    params.cpuparams.n_threads = 1
    params.verbosity = -1
    server = xllamacpp.Server(params)  # like a llama-server started without --slot-save-path
    client = ServerClient(server.listening_address + "/v1", model=SERVED_NAME)
    try:
        sharer = PrefixSharer(client, SERVED_NAME, 2)
        assert sharer.share(rag_prompts(tiny_transformers)) == 0 and not sharer.enabled
    finally:
        client.close()
        del server


def test_one_slot_needs_no_sharing(llamacpp_server: LlamaCppServer, tiny_transformers: Any) -> None:
    client = ServerClient(llamacpp_server.url + "/v1", model=SERVED_NAME)
    try:  # one slot reuses its own prefix from prompt to prompt
        assert PrefixSharer(client, SERVED_NAME, 1).share(rag_prompts(tiny_transformers)) == 0
    finally:
        client.close()
