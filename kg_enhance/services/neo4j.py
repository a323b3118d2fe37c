"""The project-managed local Neo4j Community server.

How it is obtained: Neo4j's own ``neo4j-community`` tarball is not published to
Maven Central, so ``install`` resolves the server's jars there with ``mvn``
(``org.neo4j:neo4j`` + ``org.neo4j.app:neo4j-server`` + ``org.neo4j.client:neo4j-browser``,
the same jars the tarball's ``lib/`` holds) and lays out a standard ``NEO4J_HOME``.
It is then driven by Neo4j's own launcher (``org.neo4j.server.startup.Neo4jCommand``,
what ``bin/neo4j`` runs) and admin tool, so start/stop/status, logs and pid files
behave like a tarball install. Bolt and HTTP (with Browser) listen on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import neo4j

from kg_enhance.config import defaults as D
from kg_enhance.errors import ServiceUnavailableError
from kg_enhance.paths import cache_dir, private_dir, state_dir
from kg_enhance.services.process import port_open, read_pid, tail, terminate, wait_for

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kg-enhance</groupId><artifactId>neo4j-local</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.neo4j</groupId><artifactId>neo4j</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.neo4j.app</groupId><artifactId>neo4j-server</artifactId><version>{version}</version></dependency>
    <dependency><groupId>org.neo4j.client</groupId><artifactId>neo4j-browser</artifactId><version>{browser}</version></dependency>
  </dependencies>
</project>
"""

CONF = """# Written by kg-enhance; edit freely, `kg-enhance neo4j start` keeps your changes.
server.default_listen_address=127.0.0.1
server.bolt.listen_address=127.0.0.1:{bolt_port}
server.bolt.advertised_address=127.0.0.1:{bolt_port}
server.http.listen_address=127.0.0.1:{http_port}
server.http.advertised_address=127.0.0.1:{http_port}
server.https.enabled=false
dbms.security.auth_enabled=true
server.memory.heap.initial_size={heap}
server.memory.heap.max_size={heap}
server.memory.pagecache.size={pagecache}
db.tx_log.rotation.retention_policy=1 files
# a local, offline server: no usage report to neo4j.com, no telemetry from Browser
dbms.usage_report.enabled=false
client.allow_telemetry=false
server.jvm.additional=-XX:+UseG1GC
server.jvm.additional=-XX:-OmitStackTraceInFastThrow
server.jvm.additional=-XX:+UnlockExperimentalVMOptions
server.jvm.additional=-XX:+TrustFinalNonStaticFields
server.jvm.additional=-XX:+DisableExplicitGC
server.jvm.additional=-Djdk.nio.maxCachedBufferSize=1024
server.jvm.additional=-Dio.netty.tryReflectionSetAccessible=true
server.jvm.additional=-Djdk.tls.ephemeralDHKeySize=2048
server.jvm.additional=-Djdk.tls.rejectClientInitiatedRenegotiation=true
server.jvm.additional=--add-opens=java.base/java.nio=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/java.io=ALL-UNNAMED
server.jvm.additional=--add-opens=java.base/sun.nio.ch=ALL-UNNAMED
server.jvm.additional=-Dlog4j2.disable.jmx=true
"""


@dataclass
class Neo4jStatus:
    installed: bool
    running: bool
    pid: int | None
    bolt: bool
    http: bool
    home: Path
    version: str

    def line(self) -> str:
        if not self.installed:
            return f"neo4j {self.version}: not installed (run `kg-enhance neo4j start`)"
        state = "running" if self.running else "stopped"
        extra = f" pid {self.pid}," if self.pid else ""
        ports = f" bolt 127.0.0.1:{bolt_port()} {'up' if self.bolt else 'down'}, http {'up' if self.http else 'down'}"
        return f"neo4j {self.version}: {state},{extra}{ports}; home {self.home}"


def bolt_port() -> int:
    return int(os.environ.get("KG_ENHANCE_NEO4J_BOLT_PORT", "7687"))


def http_port() -> int:
    return int(os.environ.get("KG_ENHANCE_NEO4J_HTTP_PORT", "7474"))


def version() -> str:
    return os.environ.get("KG_ENHANCE_NEO4J_VERSION", D.NEO4J_VERSION)


def lib_dir() -> Path:
    return cache_dir() / "neo4j" / version() / "lib"


def home_dir() -> Path:
    return state_dir() / "neo4j" / "home"


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if not java:
        raise ServiceUnavailableError(
            "neo4j: no `java` on PATH; install a Java 17 or 21 JDK (e.g. apt-get install openjdk-17-jre-headless)"
        )
    return java


def install(*, quiet: bool = True) -> Path:
    """Resolve the server jars with Maven into the cache (idempotent)."""
    lib = lib_dir()
    marker = lib.parent / ".complete"
    if marker.exists() and any(lib.glob("neo4j-*.jar")):
        return lib
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceUnavailableError(
            "neo4j install: `mvn` not found on PATH; install Maven (apt-get install maven) or point neo4j.uri at an existing server"
        )
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_text(POM.format(version=version(), browser=D.NEO4J_BROWSER_VERSION))
    tmp = work / "lib.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        mvn,
        "-B",
        "-q" if quiet else "-ntp",
        "-f",
        str(work / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        raise ServiceUnavailableError(
            f"neo4j install: mvn could not resolve Neo4j {version()} from Maven Central ({last[:300]}); check network access to Maven Central"
        )
    shutil.rmtree(lib, ignore_errors=True)
    tmp.rename(lib)
    marker.write_text(version())
    return lib


APOC_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kg-enhance</groupId><artifactId>neo4j-apoc</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.neo4j.procedure</groupId><artifactId>apoc-core</artifactId><version>{version}</version><classifier>core</classifier></dependency>
  </dependencies>
</project>
"""


def install_apoc() -> Path:
    """Put APOC core into the local server's ``plugins/`` (resolved once with Maven); restart to load it.

    Optional: kg_enhance itself never calls APOC. ``benchmarks/neo4j_load.py`` needs it
    for neo4j-graphrag's ``Neo4jWriter`` (``apoc.merge.relationship``).
    """
    apoc = D.NEO4J_APOC_VERSION
    work = cache_dir() / "neo4j" / f"apoc-{apoc}"
    jar = work / f"apoc-core-{apoc}-core.jar"
    if not jar.exists():
        mvn = shutil.which("mvn")
        if not mvn:
            raise ServiceUnavailableError("neo4j apoc: `mvn` not found on PATH; install Maven")
        work.mkdir(parents=True, exist_ok=True)
        (work / "pom.xml").write_text(APOC_POM.format(version=apoc))
        proc = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(work / "pom.xml"),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={work}",
                "-DexcludeTransitive=true",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not jar.exists():
            last = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise ServiceUnavailableError(
                f"neo4j apoc: mvn could not resolve APOC core {apoc} ({last[:300]})"
            )
    plugins = home_dir() / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    target = plugins / jar.name
    if not target.exists():
        shutil.copy2(jar, target)
    return target


def write_conf(conf_dir: Path) -> Path:
    """Write ``neo4j.conf`` from the environment (ports, heap, page cache) plus ``neo4j.extra.conf``.

    Written on every start, so changed ``KG_ENHANCE_NEO4J_*`` variables always apply;
    settings of one's own go in ``neo4j.extra.conf``, appended unchanged.
    """
    conf = conf_dir / "neo4j.conf"
    extra = conf_dir / "neo4j.extra.conf"
    text = CONF.format(
        bolt_port=bolt_port(),
        http_port=http_port(),
        heap=os.environ.get("KG_ENHANCE_NEO4J_HEAP", "1g"),
        pagecache=os.environ.get("KG_ENHANCE_NEO4J_PAGECACHE", "512m"),
    )
    if extra.is_file():
        text += "\n# from neo4j.extra.conf\n" + extra.read_text(encoding="utf-8")
    if not conf.exists() or conf.read_text(encoding="utf-8") != text:
        conf.write_text(text, encoding="utf-8")
    return conf


def _prepare_home(password: str) -> Path:
    home = private_dir(home_dir())
    for sub in ("conf", "data", "logs", "run", "plugins", "import", "licenses"):
        private_dir(home / sub)
    write_conf(home / "conf")
    lib_link = home / "lib"
    target = lib_dir()
    if lib_link.is_symlink() or lib_link.exists():
        if lib_link.resolve() != target.resolve():
            lib_link.unlink()
    if not lib_link.exists():
        lib_link.symlink_to(target, target_is_directory=True)
    if (
        not (home / "data" / "dbms" / "auth.ini").exists()
        and not (home / "data" / "databases" / "system").exists()
    ):
        _run_tool("org.neo4j.server.startup.Neo4jAdminCommand", ["dbms", "set-initial-password", password])
    auth = home / "data" / "dbms" / "auth.ini"
    if auth.exists():
        auth.chmod(0o600)
    return home


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["NEO4J_HOME"] = str(home_dir())
    env["NEO4J_CONF"] = str(home_dir() / "conf")
    env.setdefault("JAVA_HOME", str(Path(_java()).resolve().parent.parent))
    return env


def _run_tool(main: str, args: list[str], *, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    cmd = [_java(), "-cp", f"{lib_dir()}/*", main, *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


def _pid() -> int | None:
    return read_pid(home_dir() / "run" / "neo4j.pid")


def status() -> Neo4jStatus:
    installed = (lib_dir().parent / ".complete").exists()
    pid = _pid() if installed else None
    bolt = port_open("127.0.0.1", bolt_port())
    http = port_open("127.0.0.1", http_port())
    return Neo4jStatus(
        installed=installed,
        running=pid is not None,
        pid=pid,
        bolt=bolt,
        http=http,
        home=home_dir(),
        version=version(),
    )


def _bolt_ready(password: str) -> bool:
    try:
        with neo4j.GraphDatabase.driver(
            f"bolt://127.0.0.1:{bolt_port()}", auth=("neo4j", password), connection_timeout=2
        ) as drv:
            drv.verify_connectivity()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False


def start(*, password: str | None = None, timeout: float = 180.0) -> Neo4jStatus:
    """Install if needed, start, and wait until Bolt answers. Idempotent."""
    password = password or os.environ.get(D.NEO4J_PASSWORD_ENV) or D.NEO4J_LOCAL_PASSWORD
    current = status()
    if current.running and _bolt_ready(password):
        return current
    if not current.running and current.bolt:
        raise ServiceUnavailableError(
            f"neo4j start: port {bolt_port()} is already taken by another process; stop it or set KG_ENHANCE_NEO4J_BOLT_PORT"
        )
    install()
    home = _prepare_home(password)
    if not current.running:
        proc = _run_tool("org.neo4j.server.startup.Neo4jCommand", ["start"])
        if proc.returncode != 0:
            detail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
            raise ServiceUnavailableError(f"neo4j start failed ({detail[:300]}); see {home / 'logs'}")
    ok = wait_for(
        lambda: _bolt_ready(password), timeout=timeout, interval=1.0, alive=lambda: _pid() is not None
    )
    if not ok:
        log = tail(home / "logs" / "neo4j.log", 3) or tail(home / "logs" / "debug.log", 3)
        raise ServiceUnavailableError(
            f"neo4j did not answer on bolt://127.0.0.1:{bolt_port()} within {timeout:.0f}s (log: {log[:300]}); "
            f"check {home / 'logs'}; if the password was changed set {D.NEO4J_PASSWORD_ENV}"
        )
    return status()


def stop(*, timeout: float = 60.0) -> Neo4jStatus:
    if not (lib_dir().parent / ".complete").exists():
        return status()
    pid = _pid()
    if pid is None:
        return status()
    proc = _run_tool("org.neo4j.server.startup.Neo4jCommand", ["stop"], timeout=timeout + 30)
    if proc.returncode != 0 or _pid() is not None:
        terminate(pid, timeout=timeout)
    wait_for(lambda: not port_open("127.0.0.1", bolt_port()), timeout=15)
    return status()
