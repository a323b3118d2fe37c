"""Extraction overhead: our engine against bare ``openai`` calls, and a fully cached re-run.

Both sides send the same prompts (rendered by our template) with the same
``response_format`` and concurrency to the same server, in one process, alternating
order to share warm-up effects. Prints items/s and the ratio (target >= 0.95x), then the
cached re-run rate of the demo job's items (target >= 2,000 items/s).

    .venv/bin/python benchmarks/extract_overhead.py --items 20 --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

import openai

from kg_enhance.config.job import load_job
from kg_enhance.extract.cache import ExtractionCache
from kg_enhance.extract.client import OpenAICompatibleClient
from kg_enhance.extract.engine import Extractor
from kg_enhance.extract.prompts import load_template, render_item_prompt
from kg_enhance.io.tables import read_items
from kg_enhance.ontology import fact_json_schema, load_ontology

REPO = Path(__file__).resolve().parents[1]


async def bare(
    url: str, model: str, prompts: list[list[dict[str, str]]], schema: dict, concurrency: int, max_tokens: int
) -> float:
    client = openai.AsyncOpenAI(base_url=url, api_key="not-needed", max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(messages: list[dict[str, str]]) -> None:
        async with sem:
            await client.chat.completions.create(
                model=model,
                messages=messages,
                temperature=0.0,
                max_tokens=max_tokens,
                seed=0,  # type: ignore[arg-type]
                response_format={"type": "json_object", "schema": schema},  # type: ignore[typeddict-item]
            )

    start = time.perf_counter()
    await asyncio.gather(*(one(m) for m in prompts))
    elapsed = time.perf_counter() - start
    await client.close()
    return len(prompts) / elapsed


async def ours(
    url: str,
    model: str,
    items: list,
    ontology,
    concurrency: int,
    max_tokens: int,
    cache_path: Path,
    quarantined: set[str] | None = None,
) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    client = OpenAICompatibleClient(base_url=url, model=model, max_tokens=max_tokens)
    cache = ExtractionCache(cache_path)
    ex = Extractor(
        client,
        ontology,
        template=load_template("item_facts.v1"),
        cache=cache,
        mode="json_object",
        max_repairs=0,
        max_concurrency=concurrency,
        progress=False,
    )
    start = time.perf_counter()
    result = await ex.run(items)
    elapsed = time.perf_counter() - start
    await client.close()
    cache.close()
    if quarantined is not None:
        quarantined.update(q.item_id for q in result.quarantine)
    return len(items) / elapsed, result.stats.llm_calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", default=str(REPO / "examples/jobs/movielens-demo.yaml"))
    parser.add_argument("--url", default=os.environ.get("KG_ENHANCE_LLM_URL", "http://127.0.0.1:8080/v1"))
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    job = load_job(args.job)
    ontology = load_ontology(REPO / job.ontology)
    items, _ = read_items(job)
    sample = items[: args.items]
    template = load_template("item_facts.v1")
    prompts = [render_item_prompt(template, ontology, it, grounding="world") for it in sample]
    schema = fact_json_schema(ontology)
    max_tokens = job.llm.max_tokens
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores; server {args.url}; "
        f"{len(sample)} items, concurrency {args.concurrency}, max_tokens {max_tokens}, repairs off on our side"
    )

    bare_rates, our_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            order = ("bare", "ours") if r % 2 == 0 else ("ours", "bare")
            for side in order:
                if side == "bare":
                    bare_rates.append(
                        asyncio.run(bare(args.url, args.model, prompts, schema, args.concurrency, max_tokens))
                    )
                else:
                    rate, calls = asyncio.run(
                        ours(
                            args.url,
                            args.model,
                            sample,
                            ontology,
                            args.concurrency,
                            max_tokens,
                            Path(tmp) / f"c{r}.sqlite",
                        )
                    )
                    assert calls == len(sample), "fresh cache expected"
                    our_rates.append(rate)
        b, o = sum(bare_rates) / len(bare_rates), sum(our_rates) / len(our_rates)
        print(f"bare openai client : {b:8.3f} items/s  (rounds: {', '.join(f'{x:.3f}' for x in bare_rates)})")
        print(f"kg_enhance engine  : {o:8.3f} items/s  (rounds: {', '.join(f'{x:.3f}' for x in our_rates)})")
        print(f"ratio ours/bare    : {o / b:8.3f}x  (target >= 0.95x)")

        # fully cached re-run over every demo item: fill the cache with real answers first
        cache_path = Path(tmp) / "full.sqlite"
        all_items = items[: job.llm.item_limit] if job.llm.item_limit else items
        failed: set[str] = set()
        asyncio.run(
            ours(args.url, args.model, all_items, ontology, args.concurrency, max_tokens, cache_path, failed)
        )
        # quarantined items are remembered, not answered: measure the items with cached answers only
        all_items = [it for it in all_items if it.item_id not in failed]
        client = OpenAICompatibleClient(base_url=args.url, model=args.model, max_tokens=max_tokens)
        cache = ExtractionCache(cache_path)
        ex = Extractor(
            client,
            ontology,
            template=template,
            cache=cache,
            mode="json_object",
            max_repairs=0,
            progress=False,
        )
        start = time.perf_counter()
        result = asyncio.run(ex.run(all_items))
        elapsed = time.perf_counter() - start
        cache.close()
        assert result.stats.llm_calls == 0
        print(
            f"cached re-run      : {len(all_items) / elapsed:8.0f} items/s over {len(all_items)} demo items "
            f"({elapsed * 1000:.1f} ms, 0 LLM calls, {len(failed)} quarantined items left out; target >= 2,000 items/s)"
        )


if __name__ == "__main__":
    main()
