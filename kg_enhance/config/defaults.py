"""Every default of the job file in one place (cf. graphrag ``config/defaults.py``)."""

from __future__ import annotations

LLM_BASE_URL = "http://127.0.0.1:8080/v1"
LLM_MODEL = "smollm2-135m-instruct"
LLM_API_KEY_ENV = "OPENAI_API_KEY"
LLM_TEMPERATURE = 0.0
LLM_MAX_TOKENS = 320
LLM_TIMEOUT_S = 120.0
LLM_MAX_CONCURRENCY = 2
LLM_MAX_REPAIRS = 2
LLM_MAX_RETRIES = 6
LLM_PROMPT_TEMPLATE = "item_facts.v1"
LLM_SERVER_HOST = "127.0.0.1"
LLM_SERVER_PORT = 8080
#: the alias under which `kg-enhance llm serve` serves embeddings from the same GGUF (mean-pooled)
LLM_EMBED_MODEL = "smollm2-135m-embed"
TEXT_EMBED_BATCH_SIZE = 32
TEXT_EMBED_MAX_CHARS = 2000

NEO4J_URI = "bolt://127.0.0.1:7687"
NEO4J_USER = "neo4j"
NEO4J_PASSWORD_ENV = "NEO4J_PASSWORD"
#: documented password of the project-managed local server (never used for remote URIs unless set)
NEO4J_LOCAL_PASSWORD = "kg-enhance-local"
NEO4J_DATABASE = "neo4j"
NEO4J_BATCH_SIZE = 2000
NEO4J_VERSION = "5.26.18"
NEO4J_BROWSER_VERSION = "5.24.0"
#: APOC core for the local server (optional; only the graphrag writer comparison needs it).
#: 5.26.0 is the newest 5.26 APOC core that resolved on Maven Central here.
NEO4J_APOC_VERSION = "5.26.0"

KGE_MODEL = "TransE"
KGE_DIM = 64
KGE_EPOCHS = 60
KGE_BATCH_SIZE = 512
#: optimizer steps per KGE epoch at most: larger graphs get larger batches instead of more steps
KGE_MAX_BATCHES_PER_EPOCH = 128
KGE_LR = 0.01
KGE_SEED = 42
#: evaluation working-memory budget (MiB): evaluation batch and score slice are computed from it
KGE_EVAL_MEMORY_MB = 256
#: validation/test triples ranked per evaluation (a seeded sample); None ranks all of them
KGE_EVAL_MAX_TRIPLES = 5000
#: validation triples ranked per early-stopping round (a seeded sample, the same every round)
KGE_VALID_MAX_TRIPLES = 1000
#: test triples ranked after a fold-in (only new rows moved, so a smaller sample): a seeded sample
KGE_FOLD_IN_EVAL_MAX_TRIPLES = 1000
#: epochs between early-stopping evaluations on validation (the last epoch is always evaluated)
KGE_EVAL_EVERY = 10
#: evaluations without a relative improvement of KGE_RELATIVE_DELTA before training stops
KGE_PATIENCE = 2
KGE_RELATIVE_DELTA = 0.002

REC_DIM = 64
REC_EPOCHS = 60
#: share of the epochs a warm-started KGE or recommender training may run (issue: incremental refresh)
WARM_START_EPOCHS = 0.3
REC_BATCH_SIZE = 2048
# the recommenders' learning rates are per model: RecModel.default_learning_rate (kg_enhance/rec/models.py)
REC_WEIGHT_DECAY = 1e-6
REC_SEED = 7
REC_K = 20
REC_PATIENCE = 8
#: validation users ranked in each early-stopping evaluation (a seeded sample; all when fewer)
REC_VALID_MAX_USERS = 1000

OUTPUTS_DIR = "runs/${name}"
