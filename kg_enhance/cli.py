"""``kg-enhance``: a thin CLI over :mod:`kg_enhance.api`.

Every error is printed as one line on stderr (``--verbose`` adds the traceback) and
the process exits non-zero.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kg_enhance import api
from kg_enhance.config.models import STAGES
from kg_enhance.datasets.movielens import PREPARABLE
from kg_enhance.errors import ConfigError, KgEnhanceError
from kg_enhance.extract.prompts import TEMPLATE_DIR
from kg_enhance.graph.cypher import CypherLibrary
from kg_enhance.graph.lock import describe as describe_lock
from kg_enhance.kge.registry import model_names
from kg_enhance.paths import resource_dir
from kg_enhance.rec.models import model_keys, rec_model_resolver
from kg_enhance.rec.protocol import EARLY_EVALUATIONS
from kg_enhance.services import llm, neo4j

if TYPE_CHECKING:  # see kg_enhance.api: the pipeline is imported when a run starts
    from kg_enhance.pipeline import RunResult


def _fail(message: str, code: int) -> None:
    for line in message.splitlines() or [message]:
        click.echo(f"error: {line}", err=True)
    sys.exit(code)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verbose = click.get_current_context().find_root().params.get("verbose", False)
        try:
            return fn(*args, **kwargs)
        except KgEnhanceError as e:
            if verbose:
                traceback.print_exc()
            msg = str(e) if isinstance(e, ConfigError) else e.one_line()
            _fail(msg, e.exit_code)
        except KeyboardInterrupt:
            _fail(
                "interrupted; completed LLM extractions are cached and graph writes are idempotent, so re-run to resume",
                130,
            )
        except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
            if verbose:
                traceback.print_exc()
            first = str(e).splitlines()[0] if str(e) else ""
            _fail(
                f"internal error: {type(e).__name__}: {first[:300]} (re-run with --verbose for the traceback and report it)",
                1,
            )

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log more and show tracebacks on errors.")
@click.version_option(package_name="kg-enhance")
def main(verbose: bool) -> None:
    """Declarative LLM knowledge-graph augmentation for recommender systems."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if not verbose:
        for noisy in ("pykeen", "torch_max_mem", "neo4j", "httpx", "openai"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
    # progress: a bar on a terminal, elsewhere a line every 10% or 30 s (kg_enhance.progress)
    logging.getLogger("kg_enhance.progress").setLevel(logging.INFO)


SET_OPTION = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a job key, e.g. --set kge.epochs=5.",
)


@main.command()
@click.argument("job", type=click.Path(path_type=Path))
@SET_OPTION
@handle_errors
def validate(job: Path, overrides: tuple[str, ...]) -> None:
    """Validate JOB and its ontology; report every problem with its key path."""

    spec = api.validate_job(job, overrides=list(overrides))
    click.echo(f"ok: {job} (job {spec.name!r}, ontology {spec.ontology})")


@main.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "--until", "until", default=None, metavar="STAGE", help="Run the stages up to and including STAGE."
)
@click.option("--only", "only", default=None, metavar="STAGE[,STAGE]", help="Run only these stages.")
@click.option("--dry-run", is_flag=True, help="Estimate LLM calls and tokens; call nothing.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail on the first input problem (duplicate or unknown ids, bad ratings or timestamps, over-long text) "
    "instead of counting it in report.json input_issues.",
)
@click.option(
    "--retry-quarantined",
    is_flag=True,
    help="Ask the LLM again about items and users quarantined by earlier runs (by default the cache "
    "remembers them and they are not asked again for the same prompt, model and input).",
)
@click.option(
    "--full",
    is_flag=True,
    help="No incremental refresh: extract every subject (cached answers still count), rewrite the graph, "
    "train embeddings and recommenders from scratch.",
)
@SET_OPTION
@handle_errors
def run(
    job: Path,
    until: str | None,
    only: str | None,
    dry_run: bool,
    no_progress: bool,
    strict: bool,
    retry_quarantined: bool,
    full: bool,
    overrides: tuple[str, ...],
) -> None:
    """Run JOB: extract -> load -> embed -> recommend -> export."""

    if dry_run:
        click.echo(json.dumps(api.dry_run(job, overrides=list(overrides)), indent=2))
        return
    only_list = [s.strip() for s in only.split(",") if s.strip()] if only else None
    result = api.run_job(
        job,
        until=until,
        only=only_list,
        overrides=list(overrides),
        progress=not no_progress,
        echo=click.echo,
        strict=strict,
        retry_quarantined=retry_quarantined,
        full=full,
    )
    _summary(result)


@main.command(name="extract")
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Estimate LLM calls, tokens and cost (sync and batch); call nothing."
)
@click.option(
    "--export-batch",
    "export_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the requests as OpenAI Batch API JSONL to FILE (for `vllm run-batch` or any offline runner); ask nothing.",
)
@click.option(
    "--import-batch",
    "import_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Take the answers from FILE, a Batch API output JSONL, through validation, repair and the cache.",
)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--retry-quarantined", is_flag=True, help="Ask again about subjects quarantined by earlier runs."
)
@SET_OPTION
@handle_errors
def extract_cmd(
    job: Path,
    dry_run: bool,
    export_file: Path | None,
    import_file: Path | None,
    no_progress: bool,
    retry_quarantined: bool,
    overrides: tuple[str, ...],
) -> None:
    """Run JOB's extract stage (llm.mode sync or batch), or export / import its requests as Batch API files."""

    if dry_run + (export_file is not None) + (import_file is not None) > 1:
        raise ConfigError("give one of --dry-run, --export-batch and --import-batch")
    if dry_run:
        click.echo(json.dumps(api.dry_run(job, overrides=list(overrides)), indent=2))
        return
    if export_file is not None:
        counts = api.export_batch(job, export_file, overrides=list(overrides))
        click.echo(
            f"export: {counts['requests']} requests in {counts['file']} ({counts['cache_hits']} cached and "
            f"{counts['quarantine_remembered']} quarantined subjects left out); run them, then "
            "`kg-enhance extract JOB --import-batch OUTPUT`"
        )
        return
    result = api.run_job(
        job,
        only=["extract"],
        overrides=list(overrides),
        progress=not no_progress,
        echo=click.echo,
        retry_quarantined=retry_quarantined,
        import_batch=import_file,
    )
    _summary(result)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


@main.command("diff")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--full", is_flag=True, help="What `run --full` would do.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
@SET_OPTION
@handle_errors
def diff_command(job: Path, full: bool, as_json: bool, overrides: tuple[str, ...]) -> None:
    """What `run JOB` would do now: new, changed, unchanged, removed subjects and interactions, LLM calls."""

    answer = api.diff(job, overrides=list(overrides), full=full)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"mode: {answer['mode']} ({answer['reason']})")
    for kind, part in answer["subjects"].items():
        counts = ", ".join(f"{v} {k}" for k, v in part["counts"].items())
        click.echo(f"{kind}s: {counts}")
        for name, ids in part["ids"].items():
            more = part["counts"][name] - len(ids)
            click.echo(f"  {name}: {', '.join(ids)}" + (f" (+{more} more)" if more > 0 else ""))
    if answer["interactions"] is not None:
        click.echo("interactions: " + ", ".join(f"{v} {k}" for k, v in answer["interactions"].items()))
    stale = answer["staleness"]
    if stale["refresh_after"]:
        click.echo(f"facts older than {stale['refresh_after']}: {stale['facts_older_than_limit']}")
    llm = answer["llm"]
    click.echo(
        f"LLM: {llm['calls']} calls, about {llm['estimated_prompt_tokens']} prompt tokens, "
        f"at most {llm['estimated_completion_tokens_max']} completion tokens"
    )


def _summary(result: RunResult) -> None:
    """One line per stage that ran in this run (results of earlier runs are not shown as current)."""
    from kg_enhance.stages import EmbedResult, ExtractResult, LoadResult, RecommendResult

    for name, section in result.results.items():
        if isinstance(section, ExtractResult):
            click.echo(
                f"extract: {section.items} items, {section.llm_calls} LLM calls, {section.cache_hits} cache hits, "
                f"{section.quarantined} quarantined, {section.tokens} tokens"
            )
            if section.batch is not None and section.llm_mode == "batch":
                b = section.batch
                click.echo(
                    f"extract batch: {b.batches} batches in {b.rounds} rounds ({b.resumed} resumed from an earlier run, "
                    f"{b.expired} expired or cancelled), {b.failed_lines} failed lines, {section.pending} pending"
                )
            if section.followup_file:
                click.echo(f"extract: repairs and retries to run next in {section.followup_file}")
            for source, q in section.quality.items():
                o = q["overall"]
                click.echo(
                    f"extract vs {source}: precision {_num(o['precision'])} ({o['matched']}/{o['llm_facts']} checkable "
                    f"LLM facts), recall {_num(o['recall'])} ({o['matched']}/{o['gold_facts']} gold facts), "
                    f"F1 {_num(o['f1'])}; {q['names_with_other_type']} of {q['names_in_gold']} names the gold "
                    "source states had another type (report.json extract.quality)"
                    + (f"; scored over {section.quality_scope}" if section.quality_scope else "")
                )
            if section.users is not None:
                u = section.users
                click.echo(
                    f"extract users: {u.items} users, {u.llm_calls} LLM calls, {u.cache_hits} cache hits, "
                    f"{u.quarantined} quarantined, {u.facts} PREFERS facts"
                )
        elif isinstance(section, LoadResult):
            click.echo(
                f"graph: {section.nodes} nodes, {section.edges} edges, {section.items_with_facts} items with facts"
            )
        elif isinstance(section, EmbedResult):
            m = section.metrics
            held_out = (
                f"MRR {m['mrr']:.4f}, Hits@10 {m['hits@10']:.4f}"
                if m.get("mrr") is not None and m.get("hits@10") is not None
                else "metrics null, " + section.evaluation.removeprefix("none: ")
            )
            click.echo(
                f"kge: {section.model} dim {section.dim}: {held_out}"
                + (
                    " (UNDER-TRAINED: best epoch = last epoch; raise kge.epochs)"
                    if section.under_trained
                    else ""
                )
                + (
                    f" (STOPPED TOO EARLY: best validation at epoch {section.best_epoch}, within the first "
                    f"{EARLY_EVALUATIONS} evaluations; not a result: lower kge.eval_every or the learning rate)"
                    if section.stopped_too_early
                    else ""
                )
            )
        elif isinstance(section, RecommendResult):
            k = section.k
            for model, rep in section.models.items():
                tail = rep.slices.get("long_tail", {}).get(f"ndcg@{k}")
                click.echo(
                    f"recommend {model}: test Recall@{k} {rep.test[f'recall@{k}']:.4f}, NDCG@{k} {rep.test[f'ndcg@{k}']:.4f}"
                    + (f", long-tail NDCG@{k} {tail:.4f}" if tail is not None else "")
                    + (
                        " (UNDER-TRAINED: best epoch = last epoch; raise recommender.epochs)"
                        if rep.under_trained
                        else ""
                    )
                    + (
                        f" (STOPPED TOO EARLY: best validation at epoch {rep.best_epoch}, within the first "
                        f"{EARLY_EVALUATIONS} evaluations; not a result: raise recommender.patience, lower "
                        "eval_every, or try another learning rate (models[].learning_rate; a plateau can "
                        "need a higher one))"
                        if rep.stopped_too_early
                        else ""
                    )
                )
            if section.best_model:
                click.echo(
                    f"serving: top-{k} of {section.best_model} in recommend/topk.parquet and as RECOMMENDED edges"
                )
        elif name == "export":
            click.echo(f"export: item vectors in {result.run.export_dir}")
    click.echo(f"report: {result.run.report_path}")


@main.command()
@click.option(
    "--no-services", is_flag=True, help="Do not start Neo4j and the LLM server (they must already run)."
)
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@SET_OPTION
@handle_errors
def demo(no_services: bool, no_progress: bool, overrides: tuple[str, ...]) -> None:
    """Start the local services if needed and run the MovieLens demo job."""

    if not no_services:
        click.echo("starting neo4j (first start downloads the server jars from Maven Central) ...")
        click.echo(neo4j.start().line())
        click.echo("starting the local LLM server ...")
        click.echo(llm.serve().line())
    job = resource_dir("examples") / "jobs" / "movielens-demo.yaml"
    result = api.run_job(job, overrides=list(overrides), progress=not no_progress, echo=click.echo)
    _summary(result)
    click.echo(
        f"Neo4j Browser: http://127.0.0.1:{neo4j.http_port()}/browser/  (user neo4j, password from $NEO4J_PASSWORD or 'kg-enhance-local')"
    )
    click.echo("Paste in Browser:  MATCH p=(i:Item {item_id: '1'})-->(:Entity) RETURN p")
    click.echo("Saved queries: cypher/browser/*.cypher")
    click.echo(f"Run report: {api.report(job, overrides=list(overrides))}")


@main.command()
@click.option(
    "--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Folder (default: schemas/)."
)
@handle_errors
def schema(out_dir: Path | None) -> None:
    """Write JSON Schemas for job and ontology files (editor autocompletion)."""

    for path in api.write_schemas(out_dir=out_dir):
        click.echo(f"wrote {path}")


@main.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "--format", "fmt", type=click.Choice(["npy", "parquet", "pt"]), default="npy", show_default=True
)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Target folder.")
@click.option(
    "--version", "version", default=None, help="Embedding version (an embed run id); default: latest."
)
@click.option(
    "--no-graph-check",
    is_flag=True,
    help="Do not compare the artifact's graph fingerprint with JOB's live Neo4j graph.",
)
@SET_OPTION
@handle_errors
def export(
    job: Path, fmt: str, out_dir: Path, version: str | None, no_graph_check: bool, overrides: tuple[str, ...]
) -> None:
    """Export JOB's KG embeddings (entity and relation vectors with id maps)."""

    emb = api.export_embeddings(
        job,
        out=out_dir,
        fmt=fmt,  # type: ignore[arg-type]  # click.Choice checked it
        version=version,
        check_graph=not no_graph_check,
        overrides=list(overrides),
    )
    click.echo(
        f"exported {emb.entity_vectors.shape[0]} entity vectors (dim {emb.entity_vectors.shape[1]}) as {fmt} to {out_dir}"
    )


@main.command()
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option(
    "--fact-noise",
    default=None,
    metavar="SHARES",
    help="Noise curve instead: replace these shares of the gold facts (e.g. 0,0.25,0.5,0.75) with wrong "
    "entities of the same type; KG model per share vs no KG, over --seeds.",
)
@click.option(
    "--seeds",
    default=None,
    metavar="SEEDS",
    help="With --fact-noise: comma-separated seeds (training, noise, and the split unless recommender.split_seed "
    "is set); default recommender.seed + 0,1,2.",
)
@SET_OPTION
@handle_errors
def ablate(
    job: Path, no_progress: bool, fact_noise: str | None, seeds: str | None, overrides: tuple[str, ...]
) -> None:
    """No KG vs gold KG vs LLM KG vs both, on one split: a table in report.json and a PNG plot.

    With --fact-noise: the noise curve (how precise must facts be before they help?)."""

    if fact_noise is not None:
        _noise_curve(job, fact_noise, seeds, no_progress=no_progress, overrides=overrides)
        return
    result = api.ablate(job, overrides=list(overrides), progress=not no_progress, echo=click.echo)
    k = result["k"]
    click.echo(
        f"{'variant':10s} {'model':12s} {'triples':>8s} {'NDCG@' + str(k):>9s} {'Recall@' + str(k):>10s} {'tail NDCG':>10s}"
    )
    for row in result["rows"]:
        if "skipped" in row:
            click.echo(f"{row['variant']:10s} skipped: {row['skipped'][:100]}")
            continue
        click.echo(
            f"{row['variant']:10s} {row['model']:12s} {row['kg_triples']:8d} {row[f'ndcg@{k}']:9.4f} "
            f"{row[f'recall@{k}']:10.4f} {row[f'long_tail_ndcg@{k}']:10.4f}"
        )
    click.echo(f"plot: {result['plot']}")


def _noise_curve(
    job: Path, fact_noise: str, seeds: str | None, *, no_progress: bool, overrides: tuple[str, ...]
) -> None:
    from kg_enhance.noise_curve import format_table, parse_shares

    try:
        seed_list = [int(x) for x in seeds.split(",") if x.strip()] if seeds else None
    except ValueError as e:
        raise ConfigError(f"--seeds {seeds!r}: {e}; give integers like 0,1,2") from e
    result = api.noise_curve(
        job,
        shares=parse_shares(fact_noise),
        seeds=seed_list,
        overrides=list(overrides),
        progress=not no_progress,
        echo=click.echo,
    )
    for line in format_table(result):
        click.echo(line)
    click.echo(f"table: {result['table']} (csv: {result['csv']}); plot: {result['plot']}")


@main.command(name="export-recbole")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Target folder.")
@SET_OPTION
@handle_errors
def export_recbole_cmd(job: Path, out_dir: Path, overrides: tuple[str, ...]) -> None:
    """Write JOB's split and KG as RecBole atomic files (.inter per split part, .kg, .link) with a config."""

    got = api.export_recbole(job, out=out_dir, overrides=list(overrides))
    click.echo(
        f"wrote {got['dir']}: train {got['train']}, valid {got['valid']}, test {got['test']} interactions, "
        f"{got['kg']} KG triples, {got['link']} item links"
    )


@main.command(name="recommend")
@click.argument("job", type=click.Path(path_type=Path))
@click.argument("user_id")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="How many items.")
@SET_OPTION
@handle_errors
def recommend_cmd(job: Path, user_id: str, k: int, overrides: tuple[str, ...]) -> None:
    """Print USER_ID's precomputed top-K with its KG-path explanations (no model, no LLM)."""

    spec = api.validate_job(job, overrides=list(overrides))
    try:
        recs = api.recommend(user_id, k, job=spec)
    except KeyError as e:
        raise ConfigError(f"recommend: {e.args[0]}") from None
    for rec in recs:  # one line each: rank, id, score, title, then each path by name with its ids
        named = rec.because_names or rec.because
        because = "; ".join(
            f"{title} [{item}] via {name} [{entity}]"
            for (item, entity), (title, name) in zip(rec.because, named, strict=True)
        )
        click.echo(
            f"{rec.rank:3d}  {rec.item_id:>8s}  {rec.score:8.4f}  {rec.title or '(no title)'}"
            f"  because: {because or '(no KG path)'}"
        )


@main.command(name="report")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option(
    "--colour-by",
    "--color-by",
    "colour_by",
    default=None,
    metavar="RELATION",
    help="Colour the item projection by this relation (default: the relation with the most facts).",
)
@SET_OPTION
@handle_errors
def report_cmd(job: Path, open_browser: bool, colour_by: str | None, overrides: tuple[str, ...]) -> None:
    """Write report.html into JOB's run folder: one self-contained page about the last run."""

    path = api.report(job, overrides=list(overrides), colour_by=colour_by, open_browser=open_browser)
    click.echo(f"wrote {path}")


@main.command(name="quarantine")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, with the raw output.")
@click.option("--raw", is_flag=True, help="Also print each raw LLM answer (first 500 characters).")
@SET_OPTION
@handle_errors
def quarantine_cmd(job: Path, as_json: bool, raw: bool, overrides: tuple[str, ...]) -> None:
    """List the items and users whose LLM answers stayed invalid after every repair."""

    records = api.quarantine(job, overrides=list(overrides))
    if as_json:
        for rec in records:
            click.echo(rec.model_dump_json())
        return
    click.echo(f"{len(records)} quarantined")
    for rec in records:
        first = rec.errors[0] if rec.errors else "(no error recorded)"
        more = f" (+{len(rec.errors) - 1} more)" if len(rec.errors) > 1 else ""
        click.echo(f"{rec.kind} {rec.item_id}\t{rec.attempts} attempts\t{first[:160]}{more}")
        if raw:
            click.echo("  raw: " + (rec.raw_output or "").replace("\n", " ")[:500])


@main.command(name="ls")
@click.argument("kind", type=click.Choice(["stages", "recommenders", "kge-models", "cypher", "templates"]))
@handle_errors
def ls_cmd(kind: str) -> None:
    """List a registry: stages, recommenders, kge-models, cypher statements, prompt templates."""
    if kind == "stages":
        names: list[str] = list(STAGES)
    elif kind == "recommenders":  # with the learning rate each trains at unless the job sets one
        names = [
            f"{key}\tdefault learning_rate {rec_model_resolver.lookup(key).default_learning_rate:g}"
            for key in model_keys()
        ]
    elif kind == "kge-models":
        names = list(model_names())
    elif kind == "cypher":
        names = CypherLibrary().names()
    else:
        names = sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt"))
    for name in names:
        click.echo(name)


@main.group(name="graph")
def graph_group() -> None:
    """Inspect a job's graph: fingerprint, entity merges, RDF export; bulk first load."""


@graph_group.command(name="fingerprint")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@SET_OPTION
@handle_errors
def graph_fingerprint_cmd(job: Path, as_json: bool, overrides: tuple[str, ...]) -> None:
    """Print a canonical hash of JOB's graph (run ids, vectors and RECOMMENDED edges excluded)."""

    fp = api.graph_fingerprint(job, overrides=list(overrides))
    if as_json:
        click.echo(json.dumps(fp))
    else:
        click.echo(f"{fp['fingerprint']}  nodes={fp['nodes']} edges={fp['edges']}")


@graph_group.command(name="namespaces")
@click.argument("job", type=click.Path(path_type=Path), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@SET_OPTION
@handle_errors
def graph_namespaces_cmd(job: Path | None, as_json: bool, overrides: tuple[str, ...]) -> None:
    """List every namespace (job) in a Neo4j: node counts and who holds its run lock.

    Uses JOB's neo4j settings, or without JOB the project-managed local Neo4j. Scans every
    job's nodes once.
    """

    rows = api.graph_namespaces(job, overrides=list(overrides))
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo("namespace\titems\tusers\tentities\taliases\tlock")
    for r in rows:
        lock = "-" if r["holder"] is None else describe_lock(r["holder"])
        click.echo(f"{r['namespace']}\t{r['items']}\t{r['users']}\t{r['entities']}\t{r['aliases']}\t{lock}")


@graph_group.command(name="drop")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Drop even when other jobs' facts point at this namespace's entities (their graph.entity_namespace).",
)
@SET_OPTION
@handle_errors
def graph_drop_cmd(job: Path, yes: bool, force: bool, overrides: tuple[str, ...]) -> None:
    """Delete JOB's graph from its Neo4j (its namespace only; other jobs are left alone).

    Items, users, facts, interactions, recommendations and vectors of the job's namespace go,
    with its own entities and aliases; a shared entity namespace stays. Refuses while a run of
    JOB holds its lock, and while other jobs' facts point at its entities (unless --force).
    The run folder is kept: the next `kg-enhance run JOB` loads in full.
    """

    spec = api.load(job, overrides=list(overrides)).job
    if not yes and not click.confirm(
        f"delete namespace {spec.namespace!r} of job {spec.name!r} from {spec.neo4j.uri}?"
    ):
        _fail(f"graph drop: nothing deleted; namespace {spec.namespace!r} kept", 1)
    got = api.drop_graph(spec, force=force)
    shared = (
        f"; shared entity namespace {got['entity_namespace']!r} kept"
        if got["entity_namespace"] != got["namespace"]
        else ""
    )
    click.echo(f"deleted {got['nodes_deleted']} nodes of namespace {got['namespace']!r}{shared}")


@graph_group.command(name="why")
@click.argument("job", type=click.Path(path_type=Path))
@click.argument("name_a")
@click.argument("name_b")
@click.option("--type", "entity_type", required=True, help="Entity type, e.g. Person.")
@SET_OPTION
@handle_errors
def graph_why_cmd(job: Path, name_a: str, name_b: str, entity_type: str, overrides: tuple[str, ...]) -> None:
    """Show why NAME_A and NAME_B are (or are not) the same entity."""

    for line in api.explain_merge(job, name_a, name_b, entity_type=entity_type, overrides=list(overrides)):
        click.echo(line)


@graph_group.command(name="bulk-load")
@click.argument("job", type=click.Path(path_type=Path))
@click.option(
    "--keep-files", is_flag=True, help="Keep the generated import CSV files (their folder is printed)."
)
@click.option(
    "--fingerprint",
    "with_fingerprint",
    is_flag=True,
    help="Also print the namespace fingerprint (reads the whole graph).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@SET_OPTION
@handle_errors
def graph_bulk_load_cmd(
    job: Path, keep_files: bool, with_fingerprint: bool, as_json: bool, overrides: tuple[str, ...]
) -> None:
    """First load of JOB into the EMPTY local Neo4j with neo4j-admin import (stops and restarts it).

    For a large job's first load only: it refuses when the database holds any node or
    neo4j.uri is not the project-managed local server. Incremental loads and shared or
    remote databases take `kg-enhance run JOB` (transactional MERGE).
    """

    got = api.bulk_load(
        job,
        overrides=list(overrides),
        keep_files=keep_files,
        fingerprint=with_fingerprint,
        echo=None if as_json else click.echo,
    )
    if as_json:
        click.echo(json.dumps(got))
        return
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in got["seconds"].items())
    click.echo(f"imported {', '.join(f'{v} {k}' for k, v in got['counts'].items())} ({seconds})")
    totals = got["totals"]
    click.echo(
        f"graph: {totals['nodes']} nodes, {totals['edges']} edges, {totals['items_with_facts']} items with facts"
    )
    if got["fingerprint"]:
        click.echo(f"fingerprint {got['fingerprint']}")
    if got["files"]:
        click.echo(f"import files kept in {got['files']}")


@graph_group.command(name="export-rdf")
@click.argument("job", type=click.Path(path_type=Path))
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Target file.")
@click.option(
    "--format", "fmt", type=click.Choice(["turtle", "ntriples"]), default="turtle", show_default=True
)
@click.option("--source", "sources", multiple=True, help="Only facts from this source (repeatable).")
@SET_OPTION
@handle_errors
def graph_export_rdf_cmd(
    job: Path, out: Path, fmt: str, sources: tuple[str, ...], overrides: tuple[str, ...]
) -> None:
    """Export JOB's knowledge facts as RDF under stable IRIs."""

    got = api.export_rdf(job, out=out, fmt=fmt, sources=list(sources) or None, overrides=list(overrides))
    click.echo(f"wrote {got['triples']} triples ({got['facts']} facts) as {fmt} to {out}")


@main.group(name="datasets")
def datasets_group() -> None:
    """Prepare public datasets for the example jobs (their data are not shipped with kg-enhance)."""


@datasets_group.command(name="prepare")
@click.argument("name", type=click.Choice(list(PREPARABLE)))
@click.option(
    "--source",
    "source",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder holding the releases (ml-latest-small/, hetrec2011-movielens-2k/); "
    "default: ../shared/data/movielens beside the checkout.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Target folder; default: data/ml-latest-small in the checkout (where examples/jobs/ml-latest-small.yaml "
    "looks unless $KG_ENHANCE_ML_DATA says otherwise).",
)
@handle_errors
def datasets_prepare_cmd(name: str, source: Path | None, out_dir: Path | None) -> None:
    """Write NAME's job data (catalog, ratings, gold facts, licences) from its public release files."""

    got = api.prepare_dataset(name, source=source, out=out_dir)
    click.echo(
        f"wrote {got['dir']}: {got['movies']} movies, {got['ratings']} ratings, {got['gold_facts']} gold facts"
    )


@main.group(name="neo4j")
def neo4j_group() -> None:
    """Manage the local Neo4j Community server (127.0.0.1 only)."""


@neo4j_group.command(name="start")
@handle_errors
def neo4j_start() -> None:

    click.echo(neo4j.start().line())


@neo4j_group.command(name="stop")
@handle_errors
def neo4j_stop() -> None:

    click.echo(neo4j.stop().line())


@neo4j_group.command(name="status")
@handle_errors
def neo4j_status() -> None:
    """Print the server state; exit 0 when it runs and Bolt answers, 3 otherwise."""

    st = neo4j.status()
    click.echo(st.line())
    sys.exit(0 if st.running and st.bolt else 3)


@main.group(name="llm")
def llm_group() -> None:
    """Manage the local llama.cpp OpenAI-compatible server (127.0.0.1 only)."""


@llm_group.command(name="serve")
@handle_errors
def llm_serve() -> None:

    click.echo(llm.serve().line())


@llm_group.command(name="stop")
@handle_errors
def llm_stop() -> None:

    click.echo(llm.stop().line())


@llm_group.command(name="status")
@handle_errors
def llm_status() -> None:
    """Print the server state; exit 0 when it answers, 3 otherwise."""

    st = llm.status()
    click.echo(st.line())
    sys.exit(0 if st.running and st.answering else 3)


def entry() -> None:
    """The ``kg-enhance`` console script: :func:`main`, then a quick exit.

    A normal interpreter exit runs the atexit handlers and then frees every object of every
    module: with torch, PyKEEN and triton loaded that teardown alone took 1.0-1.5 s here (an
    incremental refresh is ~20 s). So after the command this runs the handlers itself (log
    files, temporary folders, clients close as usual), flushes stdout and stderr, and leaves
    with ``os._exit``. Under a profiler or tracer (cProfile, coverage, a debugger) it exits
    normally, so they can write their results.
    """
    try:
        main()  # standalone mode: always ends in SystemExit
        code: int | str | None = 0
    except SystemExit as e:
        code = e.code
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    if isinstance(code, str):  # what SystemExit would have printed
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to flush to
            pass
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    entry()
