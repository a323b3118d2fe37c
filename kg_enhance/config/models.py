"""The job file: one root pydantic model, ``extra="forbid"`` everywhere.

Each field has a description (it becomes the editor tooltip via ``kg-enhance schema``)
and a default taken from :mod:`kg_enhance.config.defaults`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from kg_enhance.config import defaults as D

STAGES = ("extract", "load", "embed_text", "embed", "recommend", "export")
Stage = Literal["extract", "load", "embed_text", "embed", "recommend", "export"]


NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
#: a duration: a number and a unit (s, m, h, d, w)
DURATION_PATTERN = r"^\s*\d+(\.\d+)?\s*[smhdw]\s*$"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def duration_seconds(text: str) -> float:
    """``'90d'`` -> seconds (the text matches :data:`DURATION_PATTERN`)."""
    text = text.strip()
    return float(text[:-1].strip()) * _UNIT_SECONDS[text[-1]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactColumn(_Strict):
    """A catalog column that already holds facts (e.g. MovieLens' pipe-separated genres)."""

    column: str = Field(description="Column holding the object name(s).")
    relation: str = Field(description="Ontology relation the column expresses, e.g. HAS_GENRE.")
    object_type: str = Field(description="Ontology entity type of the objects, e.g. Genre.")
    separator: str | None = Field(default=None, description="Split the cell on this string (e.g. '|').")
    ignore: list[str] = Field(default_factory=list, description="Values to skip, e.g. '(no genres listed)'.")


class TableSource(_Strict):
    """A tabular file: CSV, TSV, JSON lines or parquet."""

    path: str = Field(description="File path, relative to the job file, or '@bundled/<dataset>/<file>'.")
    format: Literal["csv", "tsv", "jsonl", "parquet"] | None = Field(
        default=None, description="File format; inferred from the extension when omitted."
    )
    encoding: str = Field(default="utf-8", description="Text encoding of the file (e.g. 'iso-8859-1').")


class ItemsSource(TableSource):
    """The catalog: one row per item."""

    id_column: str = Field(default="item_id", description="Column with the catalog id (the graph anchor).")
    title_column: str | None = Field(default=None, description="Column with a human-readable name.")
    text_fields: list[str] = Field(
        default_factory=list, description="Columns sent to the LLM as the item's text, in this order."
    )
    fact_columns: list[FactColumn] = Field(
        default_factory=list, description="Columns loaded as catalog facts without any LLM."
    )
    limit: int | None = Field(default=None, ge=1, description="Use only the first N items (for quick runs).")


class UsersSource(TableSource):
    """Optional user text (used for user-side knowledge).

    One row per user, or several (e.g. MovieLens' tags.csv, one row per tag): rows of
    the same user are joined, distinct values in file order, separated by '; '.
    """

    id_column: str = Field(default="user_id", description="Column with the user id.")
    text_fields: list[str] = Field(
        min_length=1, description="Columns with the user's text (e.g. the tags they applied)."
    )
    max_text_chars: int = Field(
        default=1500, ge=50, le=50_000, description="Cut each joined text field to this many characters."
    )


class InteractionsSource(TableSource):
    """User-item interactions (ratings, clicks)."""

    user_column: str = Field(default="user_id", description="Column with the user id.")
    item_column: str = Field(default="item_id", description="Column with the item id.")
    rating_column: str | None = Field(default=None, description="Column with an explicit rating, if any.")
    timestamp_column: str | None = Field(default=None, description="Column with a unix timestamp, if any.")
    positive_threshold: float | None = Field(
        default=None,
        description="Implicit-feedback rule: a rating >= this counts as a positive. None keeps every interaction.",
    )


class FactFile(TableSource):
    """A file of known facts (a 'gold' or external KG): a triple table, or RDF.

    Tables have one (item, relation, object, object_type) per row. RDF files (Turtle,
    N-Triples, RDF/XML) are read with rdflib: subjects under ``item_prefix`` are items,
    the predicate's local name is the relation, and an object IRI's ``rdfs:label`` and
    ``rdf:type`` give its name and type (a literal object takes the relation's tail type).
    """

    format: Literal["csv", "tsv", "jsonl", "parquet", "turtle", "ntriples", "rdfxml"] | None = Field(  # type: ignore[assignment]
        default=None,
        description="File format; inferred from the extension (.csv .tsv .jsonl .parquet .ttl .nt .rdf .owl) when omitted.",
    )
    name: str = Field(
        description="Source name recorded as provenance on every edge, e.g. 'hetrec'.",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    item_prefix: str | None = Field(
        default=None,
        description="RDF only: IRI prefix of item subjects (the rest is the item id); default '<graph.rdf_base>item:'.",
    )
    item_column: str = Field(default="item_id", description="Column with the head item id.")
    relation_column: str = Field(default="relation", description="Column with the ontology relation.")
    object_column: str = Field(default="object", description="Column with the object entity name.")
    object_type_column: str = Field(default="object_type", description="Column with the object entity type.")


class SourceConfig(_Strict):
    """The job's input files, and the limits applied while reading them."""

    items: ItemsSource = Field(description="The item catalog.")
    users: UsersSource | None = Field(default=None, description="Optional user table.")
    interactions: InteractionsSource | None = Field(default=None, description="User-item interactions.")
    facts: list[FactFile] = Field(
        default_factory=list, description="Known-fact files loaded next to LLM facts."
    )
    max_text_chars: int = Field(
        default=10_000,
        ge=10,
        description=(
            "Longest text value read from any input file (titles, text fields, properties, fact objects); "
            "longer values are cut to this length and counted in the report's input_issues."
        ),
    )


class UserExtraction(_Strict):
    """User-side knowledge (opt-in): preference facts from users' own text, e.g. the tags they applied."""

    enabled: bool = Field(default=False, description="Extract (:User)-[:PREFERS]->(entity) facts.")
    prompt_template: str = Field(default="user_prefs.v1", description="Versioned prompt template name.")
    grounding: Literal["world", "text"] = Field(
        default="text",
        description="'text' (default): preferred names must appear in the user's text; 'world' lets the LLM generalise.",
    )
    limit: int | None = Field(default=None, ge=1, description="Send at most this many users to the LLM.")


class BatchConfig(_Strict):
    """``llm.mode: batch``: how requests go through an OpenAI-compatible Batch API (Files + Batches endpoints)."""

    completion_window: Literal["24h"] = Field(default="24h", description="Batch completion window.")
    poll_initial_s: float = Field(
        default=10.0, gt=0, description="First wait between polls of a batch's status, in seconds."
    )
    poll_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait between polls (the wait doubles up to it)."
    )
    max_rounds: int = Field(
        default=8,
        ge=1,
        le=100,
        description=(
            "Batches submitted per extraction pass, counting repairs, lines resubmitted after an expiry or "
            "cancellation, and retries of failed lines; subjects still open after that stay pending (re-run to continue)."
        ),
    )
    max_line_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Resubmissions of a request whose batch line failed; then the subject is quarantined.",
    )
    max_requests: int = Field(
        default=50_000, ge=1, le=50_000, description="Requests per batch (the OpenAI limit is 50,000)."
    )
    price_factor: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Batch price as a share of the synchronous price (OpenAI: 0.5), for cost estimates.",
    )


class LLMConfig(_Strict):
    """Any OpenAI-compatible endpoint: llama.cpp, vLLM, Ollama, OpenAI."""

    enabled: bool = Field(default=True, description="Run LLM extraction at all.")
    mode: Literal["sync", "batch"] = Field(
        default="sync",
        description=(
            "'sync': one request per subject, answered at once; 'batch': the requests go through the "
            "endpoint's Batch API (Files + Batches, about half the price, answered within llm.batch.completion_window)."
        ),
    )
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Settings of llm.mode: batch.")
    base_url: str = Field(default=D.LLM_BASE_URL, description="OpenAI-compatible base URL (ends in /v1).")
    model: str = Field(default=D.LLM_MODEL, description="Model name sent with each request.")
    api_key_env: str = Field(
        default=D.LLM_API_KEY_ENV,
        description="Environment variable holding the API key (never written anywhere).",
    )
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        default="auto",
        description=(
            "'json_schema' (OpenAI, vLLM, Ollama), 'json_object' with a schema (llama-cpp-python), "
            "'prompt' (plain JSON, parsed and repaired), or 'auto' to detect the server."
        ),
    )
    temperature: float = Field(default=D.LLM_TEMPERATURE, ge=0.0, le=2.0, description="Sampling temperature.")
    max_tokens: int = Field(default=D.LLM_MAX_TOKENS, ge=16, le=32768, description="Max tokens per answer.")
    seed: int | None = Field(default=0, description="Sampling seed sent to the server, where supported.")
    timeout_s: float = Field(default=D.LLM_TIMEOUT_S, gt=0, description="Per-request timeout in seconds.")
    call_deadline_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Overall limit in seconds for one LLM call, retries and waits included; an endpoint that "
            "accepts connections but does not answer fails within it."
        ),
    )
    max_concurrency: int = Field(
        default=D.LLM_MAX_CONCURRENCY, ge=1, le=256, description="Requests in flight."
    )
    max_retries: int = Field(
        default=D.LLM_MAX_RETRIES, ge=0, le=20, description="Transport retries on 429/5xx/timeouts."
    )
    max_repairs: int = Field(
        default=D.LLM_MAX_REPAIRS,
        ge=0,
        le=10,
        description="Re-asks with the validation errors before quarantine.",
    )
    prompt_template: str = Field(default=D.LLM_PROMPT_TEMPLATE, description="Versioned prompt template name.")
    grounding: Literal["world", "text"] = Field(
        default="world",
        description="'text': objects must appear in the item's text; 'world': the LLM's own knowledge is allowed.",
    )
    item_limit: int | None = Field(
        default=None,
        ge=1,
        description="Send at most this many items to the LLM (the rest get catalog facts only).",
    )
    requests_per_minute: int | None = Field(default=None, ge=1, description="Client-side request rate limit.")
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Client-side token rate limit (prompt estimate + max_tokens per request).",
    )
    budget_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Stop the extract stage once this many tokens were spent in the run; finished items are kept and cached.",
    )
    users: UserExtraction = Field(
        default_factory=UserExtraction,
        description="User-side preference extraction; needs source.users and a relation with head User.",
    )
    refresh_after: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="Re-extract subjects whose facts are older than this (e.g. '90d', '12h', '2w'), oldest "
        "first, within budget_tokens; the cached answer is not reused for them. null: facts never expire.",
    )
    price_per_1m_input_tokens: float = Field(
        default=0.0, ge=0, description="Price of 1M prompt tokens, for cost estimates."
    )
    price_per_1m_output_tokens: float = Field(
        default=0.0, ge=0, description="Price of 1M completion tokens, for cost estimates."
    )

    @property
    def refresh_after_s(self) -> float | None:
        """``refresh_after`` in seconds (None: never)."""
        return duration_seconds(self.refresh_after) if self.refresh_after else None


class TextEmbeddingConfig(_Strict):
    """LLM text embeddings (the "LLM as embedder" branch): each item's text through ``/v1/embeddings``.

    The ``embed_text`` stage sends the text in batches, caches every vector by a hash of
    the endpoint, model and text (like extraction), saves them under ``text_embeddings/``
    in the run folder, sets ``text_embedding`` on the Item (and User) nodes with a vector
    index, and recommenders with ``text: true`` fuse them in as an item-side input.
    """

    enabled: bool = Field(default=False, description="Run the embed_text stage.")
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL (ends in /v1); llm.base_url when omitted."
    )
    model: str = Field(
        default=D.LLM_EMBED_MODEL,
        description="Embedding model name sent with each request (`kg-enhance llm serve` serves "
        f"{D.LLM_EMBED_MODEL!r} from the local GGUF; e.g. 'text-embedding-3-small' on OpenAI).",
    )
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the API key; llm.api_key_env when omitted."
    )
    fields: list[str] | None = Field(
        default=None,
        description="Catalog columns embedded as the item's text, in this order ('column: value' lines); "
        "the title column plus source.items.text_fields when omitted.",
    )
    users: bool = Field(
        default=False,
        description="Also embed each user's text (source.users.text_fields); stored on User nodes and exported.",
    )
    batch_size: int = Field(
        default=D.TEXT_EMBED_BATCH_SIZE, ge=1, le=2048, description="Texts per /v1/embeddings request."
    )
    dim: int | None = Field(
        default=None,
        ge=1,
        le=65_536,
        description="Expected vector length: an answer of another length is an error (catches a wrong model). "
        "Omitted: the first answer sets it and every later one must match.",
    )
    max_chars: int = Field(
        default=D.TEXT_EMBED_MAX_CHARS,
        ge=10,
        description="Cut each text to this many characters before embedding.",
    )
    max_concurrency: int = Field(default=1, ge=1, le=64, description="Requests in flight.")

    def endpoint(self, llm: LLMConfig) -> tuple[str, str]:
        """The base URL and the API-key variable to use (this section's, else the ``llm`` section's)."""
        return self.base_url or llm.base_url, self.api_key_env or llm.api_key_env


class Neo4jConfig(_Strict):
    uri: str = Field(default=D.NEO4J_URI, description="Bolt or neo4j:// URI of any Neo4j 5.x.")
    user: str = Field(default=D.NEO4J_USER, description="User name.")
    password_env: str = Field(
        default=D.NEO4J_PASSWORD_ENV,
        description=f"Environment variable with the password (local default: {D.NEO4J_LOCAL_PASSWORD!r}).",
    )
    database: str = Field(
        default=D.NEO4J_DATABASE,
        description="Database name. Neo4j Community has one user database ('neo4j'): isolate jobs with graph.namespace.",
    )
    batch_size: int = Field(
        default=D.NEO4J_BATCH_SIZE, ge=1, le=100_000, description="Rows per UNWIND batch."
    )
    retry_s: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="How long a batch is retried on transient errors and lost connections (e.g. a Neo4j restart).",
    )


class ResolutionConfig(_Strict):
    """Entity resolution before facts are written: normalised keys, then aliases, then fuzzy matches."""

    fuzzy: bool = Field(
        default=True,
        description="Look for near-duplicate names (typos, word order) through the full-text index.",
    )
    threshold: float = Field(
        default=0.9,
        ge=0.5,
        le=1.0,
        description="Similarity (0..1, token-sorted edit ratio) at which two names merge.",
    )
    min_chars: int = Field(
        default=6, ge=1, description="Names shorter than this (normalised) never merge fuzzily."
    )
    seed_vocabulary: bool = Field(
        default=True,
        description="Create the ontology's closed vocabularies (e.g. the genre list) as entities up front.",
    )
    duplicate_report_threshold: float = Field(
        default=0.8,
        ge=0.5,
        le=1.0,
        description="Similarity at which remaining entity pairs count as duplicate candidates in the report.",
    )


class GraphConfig(_Strict):
    """How facts become graph entities, and whose they are in a shared Neo4j."""

    namespace: str | None = Field(
        default=None,
        pattern=NAMESPACE_PATTERN,
        description="Owner of this job's items, users, interactions, facts, recommendations and vectors in a "
        "shared Neo4j (property `ns` on its nodes); defaults to the job name. Jobs that name the same "
        "namespace share these deliberately.",
    )
    entity_namespace: str | None = Field(
        default=None,
        pattern=NAMESPACE_PATTERN,
        description="Namespace of the entities (and aliases) the job's facts point to; defaults to `namespace`. "
        "Several jobs may declare the same one to share entities (their KG vectors then stay in the artifacts only).",
    )
    lock_stale_after_s: float = Field(
        default=300.0,
        ge=10,
        description="A namespace lock whose holder runs on another host is taken over after this long without "
        "a heartbeat (a holder on this host is checked by its pid).",
    )

    resolution: ResolutionConfig = Field(
        default_factory=ResolutionConfig, description="Entity resolution settings."
    )
    compare_sources: list[str] | None = Field(
        default=None,
        description="Fact-file sources used as gold for LLM precision/recall in the report; all fact files when omitted.",
    )
    rdf_base: str = Field(
        default="urn:kg-enhance:",
        description="IRI prefix of RDF export: items are <base>item:<id>, entities <base>entity:<Type>:<key>.",
        pattern=r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$",
    )
    stats_max_entities: int = Field(
        default=20_000,
        ge=0,
        description="The load report's duplicate-candidate scan (one full-text lookup per entity) looks at "
        "most at this many entities: all of them when there are fewer, else a deterministic sample by key "
        "hash (the report says which). The scan is skipped when a load writes no new entity.",
    )


class KGEConfig(_Strict):
    """PyKEEN training of knowledge-graph embeddings."""

    enabled: bool = Field(default=True, description="Run the embed stage.")
    model: str = Field(
        default=D.KGE_MODEL, description="Any PyKEEN model name (TransE, RotatE, DistMult, ...)."
    )
    dim: int = Field(default=D.KGE_DIM, ge=2, le=4096, description="Embedding dimension.")
    epochs: int = Field(
        default=D.KGE_EPOCHS, ge=1, description="Training epochs (at most; early stopping may end sooner)."
    )
    batch_size: int = Field(
        default=D.KGE_BATCH_SIZE,
        ge=1,
        description="Training batch size. On CPU each optimizer step costs about the same whatever its size "
        "(dense Adam update of every embedding), so larger batches train more triples per second, with fewer "
        "updates per epoch.",
    )
    max_batches_per_epoch: int | None = Field(
        default=D.KGE_MAX_BATCHES_PER_EPOCH,
        ge=1,
        description="At most this many optimizer steps per epoch: when the training triples exceed "
        "batch_size x this, the batch grows instead (the report gives the batch used). With dense Adam a step "
        "costs about the entity count, so a fixed step count keeps an epoch linear in the graph; null: always "
        "batch_size, and an epoch costs triples x entities.",
    )
    sub_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="Split each training batch into sub-batches of this size (same gradient, less memory); "
        "whole batches when omitted.",
    )
    slice_size: int | None = Field(
        default=None,
        ge=1,
        description="Training with training_loop: lcwa: score this many candidate entities at a time (less "
        "memory); all at once when omitted. PyKEEN 1.11 adds a model's regularization term once per slice, "
        "so with regularized models (DistMult, ComplEx) slicing also changes the loss.",
    )
    training_loop: Literal["slcwa", "lcwa"] = Field(
        default="slcwa",
        description="'slcwa': positives against sampled negatives (negative_sampler, num_negs_per_pos); "
        "'lcwa': each (head, relation) scored against every entity.",
    )
    automatic_memory_optimization: bool | None = Field(
        default=None,
        description="PyKEEN's search for a sub-batch and slice size that fit the device (it replaces "
        "sub_batch_size and slice_size). Omitted: on for CUDA when neither is set, off on CPU, where it can "
        "only probe and not recover from running out of memory.",
    )
    learning_rate: float = Field(default=D.KGE_LR, gt=0, description="Optimizer learning rate.")
    optimizer: Literal["adam", "sparse_adam"] = Field(
        default="adam",
        description="'adam': dense Adam, every embedding row updated every step, so an epoch costs steps x "
        "entities (growth above linear: measured 1.57 -> 10.6 CPU s/epoch from 1x to 4x the full MovieLens KG); "
        "'sparse_adam': sparse gradients and torch's SparseAdam, a step updates only its batch's rows (linear: "
        "1.49 -> 5.3 -> 11.8 s/epoch at 1x, 4x, 8x) but, at the same learning rate, lower link-prediction "
        "quality (MRR 0.042 vs 0.052 at 1x, one seed). Needs training_loop slcwa and a model whose only "
        "parameters are embedding tables. Worth it for graphs of 10^5 entities and more.",
    )
    loss: str | None = Field(
        default=None,
        description="PyKEEN loss name; when omitted, PyKEEN's default loss (MarginRankingLoss) for every model, "
        "as pykeen.pipeline does.",
    )
    negative_sampler: str = Field(default="basic", description="PyKEEN negative sampler name (slcwa).")
    num_negs_per_pos: int = Field(default=4, ge=1, description="Negatives per positive triple (slcwa).")
    seed: int = Field(
        default=D.KGE_SEED, description="Random seed (split, initialisation, training, evaluation samples)."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="Training device; 'auto': CUDA when present, else CPU."
    )
    relations: Literal["facts", "collaborative"] = Field(
        default="facts",
        description="'facts': item-entity facts only; 'collaborative': also user-item edges and user-side facts (PREFERS).",
    )
    sources: list[str] | None = Field(
        default=None,
        description="Use facts from these sources only (e.g. ['catalog', 'llm']); all when omitted.",
    )
    test_ratio: float = Field(
        default=0.1,
        ge=0.0,
        lt=0.5,
        description="Share of triples held out for testing, and as much again for validation (early stopping). "
        "0: nothing held out, no evaluation, no metrics.",
    )
    split: Literal["hash", "random"] = Field(
        default="hash",
        description="How triples are held out. 'hash': each triple goes to test, validation or training by a "
        "seeded hash of its labels, so a triple keeps its side when the graph changes (held-out triples that "
        "would leave an entity or relation without a training triple move to training, and stay there in "
        "warm-started runs): the split a warm start needs, since carried vectors were trained on the previous "
        "run's training triples. 'random': PyKEEN's seeded random split (the whole split changes when one "
        "triple does; a warm start is then refused).",
    )
    eval_every: int = Field(
        default=D.KGE_EVAL_EVERY,
        ge=1,
        description="Epochs between early-stopping evaluations on validation; the last epoch is always evaluated.",
    )
    patience: int = Field(
        default=D.KGE_PATIENCE,
        ge=1,
        description="Evaluations without a relative MRR improvement of 0.2% before training stops; the best "
        "validation epoch's weights are kept.",
    )
    eval_max_triples: int | None = Field(
        default=D.KGE_EVAL_MAX_TRIPLES,
        ge=1,
        description="Rank at most this many test triples in the final evaluation (a sample fixed by seed; "
        "known triples are still all filtered); null ranks the full test set.",
    )
    valid_max_triples: int | None = Field(
        default=D.KGE_VALID_MAX_TRIPLES,
        ge=1,
        description="Rank at most this many validation triples in each early-stopping evaluation (one sample "
        "fixed by seed, the same every round, so rounds compare like with like); null ranks the full set. "
        "Evaluation cost grows linearly with it.",
    )
    warm_start: bool = Field(
        default=True,
        description="Start from the previous artifact's vectors for entities and relations that still exist "
        "(new ones initialised as PyKEEN does) and train for warm_start_epochs of the epochs; `run --full` "
        "trains from scratch.",
    )
    warm_start_epochs: float = Field(
        default=D.WARM_START_EPOCHS,
        gt=0,
        le=1,
        description="Share of kge.epochs a warm-started training may run (same early stopping).",
    )
    warm_start_mode: Literal["continue", "fold_in"] = Field(
        default="continue",
        description="'continue': every vector trains on every training triple, from the carried vectors; "
        "'fold_in': carried vectors stay fixed and only new entities and relations train, on the training "
        "triples that touch them, so a refresh costs about the change, not the graph; its early stopping "
        "ranks the validation triples that touch a new entity or relation (the only ones training can "
        "change the scores of), and its test ranking at most fold_in_eval_max_triples. Run `run --full` now "
        "and then: fold-ins never revisit old vectors.",
    )
    fold_in_eval_max_triples: int | None = Field(
        default=D.KGE_FOLD_IN_EVAL_MAX_TRIPLES,
        ge=1,
        description="Test triples ranked after a fold-in (a seeded sample, like eval_max_triples; the report "
        "says how many); null: eval_max_triples.",
    )
    eval_memory_mb: int = Field(
        default=D.KGE_EVAL_MEMORY_MB,
        ge=1,
        description="Working-memory budget of one evaluation batch (MiB): the evaluation batch size and score "
        "slice are computed from it, the entity count and the embedding width. PyKEEN's floor is one score "
        "row per evaluated triple (entities x 4 bytes).",
    )

    @model_validator(mode="after")
    def _memory_settings_agree(self) -> KGEConfig:
        if self.slice_size is not None and self.training_loop != "lcwa":
            raise ValueError(
                "kge.slice_size slices the scoring of all entities, which only training_loop: lcwa does; "
                "use sub_batch_size with slcwa"
            )
        if self.automatic_memory_optimization and (self.sub_batch_size or self.slice_size):
            raise ValueError(
                "kge.automatic_memory_optimization: true searches sub_batch_size and slice_size itself; "
                "set those or turn it off"
            )
        return self


class RecModelSpec(_Strict):
    """A recommender model: a registry key plus its parameters."""

    type: str = Field(description="Registry key: see `kg-enhance ls recommenders`.")
    name: str | None = Field(default=None, description="Name in the report; defaults to the type.")
    params: dict[str, Any] = Field(default_factory=dict, description="Model-specific parameters.")
    text: bool = Field(
        default=False,
        description="Fuse the item's LLM text embedding (text_embeddings) into its vector through a learned "
        "projection; needs text_embeddings.enabled.",
    )
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Adam learning rate of this model; null: recommender.learning_rate, else the model's default.",
    )

    @property
    def key(self) -> str:
        return self.name or self.type


KGVariant = Literal["gold", "llm", "gold+llm"]
KG_VARIANTS: tuple[KGVariant, ...] = ("gold", "llm", "gold+llm")


class AblationConfig(_Strict):
    """No KG vs gold KG vs LLM KG vs both, on the same split (`kg-enhance ablate JOB`)."""

    model: str = Field(default="kg_lightgcn", description="KG-joined model trained on each KG variant.")
    baseline: str = Field(
        default="lightgcn", description="The no-KG model (the same architecture without the KG)."
    )
    gold_sources: list[str] | None = Field(
        default=None,
        description="Sources of the 'gold' KG; default: 'catalog' plus every source.facts name.",
    )
    llm_sources: list[str] = Field(default_factory=lambda: ["llm"], description="Sources of the 'LLM' KG.")
    kg_variants: list[KGVariant] = Field(
        default_factory=lambda: list(KG_VARIANTS),
        description="KG rows to train (each is one PyKEEN run plus one recommender).",
    )
    text: bool | None = Field(
        default=None,
        description="Add the LLM text embedding rows: 'text' (the baseline with text_embeddings fused in) and "
        "'<first KG variant>+text' (the KG model with them); default: when text_embeddings.enabled.",
    )


class RecommenderConfig(_Strict):
    enabled: bool = Field(default=True, description="Run the recommend stage.")
    models: list[RecModelSpec] = Field(
        default_factory=lambda: [RecModelSpec(type="bpr_mf"), RecModelSpec(type="kg_bpr")],
        description="Models trained and evaluated on the same split.",
    )
    dim: int = Field(default=D.REC_DIM, ge=2, le=4096, description="Embedding dimension.")
    epochs: int = Field(default=D.REC_EPOCHS, ge=1, description="Max training epochs.")
    batch_size: int = Field(default=D.REC_BATCH_SIZE, ge=1, description="Triples (u, i+, i-) per batch.")
    learning_rate: float | None = Field(
        default=None,
        gt=0,
        description="Adam learning rate of every model without its own models[].learning_rate; null: each "
        "model's default (`kg-enhance ls recommenders` lists them; 0.005 for every model today).",
    )
    weight_decay: float = Field(default=D.REC_WEIGHT_DECAY, ge=0, description="L2 on the batch embeddings.")
    seed: int = Field(
        default=D.REC_SEED, description="Seed for the split and training (the split's alone with split_seed)."
    )
    split_seed: int | None = Field(
        default=None,
        description="Seed of the split alone; null: `seed`. Set it to train several seeds on one split (same "
        "training, validation and test interactions), for example to measure how much two full retrainings "
        "differ.",
    )
    k: int = Field(
        default=D.REC_K, ge=1, le=1000, description="Cut-off of Recall@K / NDCG@K and of top-K lists."
    )
    patience: int = Field(
        default=D.REC_PATIENCE,
        ge=1,
        description="Early stopping: evaluations without a better validation NDCG@K before training stops.",
    )
    eval_every: int = Field(
        default=1, ge=1, description="Evaluate on validation every this many epochs (and after the last)."
    )
    valid_max_users: int | None = Field(
        default=D.REC_VALID_MAX_USERS,
        ge=1,
        description="Rank the validation items of at most this many users in each early-stopping evaluation (one "
        "sample fixed by seed, the same every round); null ranks every user. Full ranking costs users x items, "
        "so without a cap validation grows with the square of the catalog; the final validation and test "
        "metrics always rank every user.",
    )
    graph_batches_per_epoch: int = Field(
        default=32,
        ge=1,
        description="Graph models (LightGCN, KG-LightGCN) propagate the whole graph once per batch: at most this "
        "many batches per epoch (larger batches on large data), so an epoch costs about linear time in the graph.",
    )
    warm_start: bool = Field(
        default=True,
        description="Start each model from its previous weights where user, item and entity ids match "
        "(new rows initialised as usual) and train for warm_start_epochs of the epochs; `run --full` "
        "trains from scratch.",
    )
    warm_start_epochs: float = Field(
        default=D.WARM_START_EPOCHS,
        gt=0,
        le=1,
        description="Share of recommender.epochs a warm-started training may run (same early stopping).",
    )
    warm_start_mode: Literal["continue", "fold_in"] = Field(
        default="continue",
        description="'continue': a warm start trains the whole model on all training interactions. 'fold_in': "
        "every carried user, item and entity row and every carried parameter stays frozen; only rows that are "
        "new (or could not be carried) train, on the training interactions of new users and new items only "
        "(negatives from the whole catalog), so a refresh costs about the delta for bpr_mf / kg_bpr (graph "
        "models still propagate the whole graph once per batch); no such interaction: no epoch is trained. "
        "Old rows never adapt to new data: run `--full` now and then.",
    )
    interactions: Literal["files", "neo4j"] = Field(
        default="files",
        description="Read interactions from source.interactions ('files') or from the graph's INTERACTED edges ('neo4j').",
    )
    split: Literal["user_random", "user_hash", "temporal"] = Field(
        default="user_random",
        description="'user_random': 80/10/10 of each user's positives (a seeded shuffle: adding any interaction "
        "reshuffles it, so a warm start is then refused); 'user_hash': each interaction goes to test, validation "
        "or training by a seeded hash of its user and item (10/10/80 on average), so existing interactions keep "
        "their side when new ones arrive: the split for incremental refreshes; 'temporal': leave-last-out.",
    )
    negatives: Literal["uniform", "popularity"] = Field(
        default="uniform",
        description="How BPR draws each negative item: 'uniform' over the catalog, or 'popularity': in proportion "
        "to (training interactions + 1) ** negative_alpha (RecBole's popularity distribution, every item "
        "drawable; a draw among the user's own training items is redrawn), which pushes the head down harder and "
        "spreads the lists over more of the catalog.",
    )
    exclude_seen_negatives: bool = Field(
        default=True,
        description="Redraw a uniform negative that is one of the user's training items, as RecBole's sampler "
        "does (popularity negatives are always redrawn so); false draws over the whole catalog, as training "
        "did before (a contradictory pair for 2% of draws on ml-latest-small, 17% on the demo). On the demo "
        "it closed most of the gap to RecBole's LightGCN and helped kg_lightgcn, but cost kgat 0.007 NDCG@20 "
        "(benchmarks/RESULTS.md). Costs a binary search per draw over the sorted training pairs.",
    )
    negative_alpha: float = Field(
        default=0.5,
        ge=0,
        le=2,
        description="Exponent of the popularity distribution when negatives is 'popularity' (0 = uniform); 0.5 "
        "measured best of 0.5 and 1.0 on ml-latest-small (benchmarks/long_tail.py).",
    )
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="Training device.")
    head_share: float = Field(
        default=0.2,
        gt=0,
        lt=1,
        description="Long-tail slice: items outside this top share by training interactions.",
    )
    few_interactions: int = Field(
        default=10,
        ge=1,
        description="Few-interaction slice: users with at most this many training positives.",
    )
    tail_slots: int = Field(
        default=0,
        ge=0,
        description="Reserve the last tail_slots of the K positions of every list for long-tail items (outside "
        "the head_share most-interacted), filled in the model's own score order with those not already listed: "
        "a quota that guarantees the tail exposure. Applied to every model alike, in early-stopping validation, "
        "test, slices and the served top-K; 0 ranks plainly. Ranking costs about the same as without it (benchmarks/tail_slots.py).",
    )
    ablation: AblationConfig = Field(
        default_factory=lambda: AblationConfig(),
        description="`kg-enhance ablate`: which KG variants to compare.",
    )

    @model_validator(mode="after")
    def _tail_slots_leave_a_head(self) -> RecommenderConfig:
        if self.tail_slots >= self.k:
            raise ValueError(
                f"recommender.tail_slots ({self.tail_slots}) must be below recommender.k ({self.k}): "
                "at least one position ranks every item"
            )
        return self

    @property
    def effective_split_seed(self) -> int:
        """The split's seed: ``split_seed``, or ``seed`` when that is null."""
        return self.seed if self.split_seed is None else self.split_seed


class OutputsConfig(_Strict):
    dir: str = Field(
        default=D.OUTPUTS_DIR,
        description="Run directory, relative to the job file's folder (like every job path); '${name}' is the job name.",
    )


class JobSpec(_Strict):
    """Root of a kg_enhance job file."""

    version: Literal[1] = Field(default=1, description="Job file format version.")
    name: str = Field(
        description="Job name: used in provenance and output paths.", pattern=r"^[A-Za-z0-9_.-]{1,64}$"
    )
    source: SourceConfig = Field(
        description="Where the catalog, users, interactions and known facts come from."
    )
    ontology: str = Field(
        description="Ontology file, e.g. 'schemas/movies.yaml' (relative to the job file or repo)."
    )
    llm: LLMConfig = Field(default_factory=LLMConfig, description="LLM endpoint and extraction settings.")
    neo4j: Neo4jConfig = Field(default_factory=Neo4jConfig, description="Graph store connection.")
    graph: GraphConfig = Field(
        default_factory=GraphConfig, description="Entity resolution, gold comparison, RDF."
    )
    kge: KGEConfig = Field(default_factory=KGEConfig, description="Knowledge-graph embedding settings.")
    recommender: RecommenderConfig = Field(
        default_factory=RecommenderConfig, description="Recommender settings."
    )
    text_embeddings: TextEmbeddingConfig = Field(
        default_factory=TextEmbeddingConfig,
        description="LLM text embeddings of items (and users) from an OpenAI-compatible /v1/embeddings endpoint.",
    )
    outputs: OutputsConfig = Field(default_factory=OutputsConfig, description="Where run artifacts go.")

    #: folder of the job file, for resolving relative paths; not part of the file format
    _base_dir: Path | None = PrivateAttr(default=None)

    @property
    def base_dir(self) -> Path:
        return self._base_dir or Path.cwd()

    @property
    def namespace(self) -> str:
        """Whose data this job's graph writes are: ``graph.namespace``, or the job name."""
        return self.graph.namespace or self.name

    @property
    def entity_namespace(self) -> str:
        return self.graph.entity_namespace or self.namespace

    @model_validator(mode="after")
    def _unique_model_keys(self) -> JobSpec:
        problems = []  # all at once, one "dotted.key: message" line each
        keys = [m.key for m in self.recommender.models]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            problems.append(f"recommender.models: names must be unique; repeated: {', '.join(dupes)}")
        names = [f.name for f in self.source.facts]
        clash = sorted({n for n in names if names.count(n) > 1 or n in ("llm", "catalog")})
        if clash:
            problems.append(
                f"source.facts: names must be unique and not 'llm' or 'catalog' (those are built-in sources): {', '.join(clash)}"
            )
        texts = [m.key for m in self.recommender.models if m.text]
        if texts and not self.text_embeddings.enabled:
            raise ValueError(
                f"recommender.models {', '.join(texts)} have text: true, which needs text_embeddings.enabled: true"
            )
        if self.text_embeddings.enabled and self.text_embeddings.users and self.source.users is None:
            raise ValueError("text_embeddings.users needs source.users (a table of user text, e.g. tags.csv)")
        if self.llm.enabled and self.llm.users.enabled and self.source.users is None:
            problems.append("llm.users.enabled needs source.users (a table of user text, e.g. tags.csv)")
        if problems:
            raise ValueError("\n".join(problems))
        return self
