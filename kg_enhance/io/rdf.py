"""RDF export and import with rdflib, under stable IRIs.

IRIs are derived from graph anchors, so the same graph always exports the same
triples (``base`` defaults to ``urn:kg-enhance:``, set ``graph.rdf_base`` for an
http namespace):

* items ``<base>item:<item_id>``, users ``<base>user:<user_id>``
* entities ``<base>entity:<Type>:<normalised name>`` (the entity key), with
  ``rdfs:label`` (display name) and ``rdf:type <base>type:<Type>``
* relations ``<base>rel:<RELATION>``

Path segments are percent-encoded. Import reads the same shape back as a named
source (see :class:`kg_enhance.config.models.FactFile`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from rdflib import RDF, RDFS, Graph, Literal, URIRef

from kg_enhance.errors import DataError
from kg_enhance.names import clean_name
from kg_enhance.ontology.models import Ontology
from kg_enhance.types import Fact

RDF_FORMATS = {"turtle": "turtle", "ntriples": "nt", "rdfxml": "xml"}
SUFFIX_FORMATS = {".ttl": "turtle", ".nt": "ntriples", ".rdf": "rdfxml", ".owl": "rdfxml"}


def _seg(text: str) -> str:
    return quote(text, safe="")


class IRIs:
    def __init__(self, base: str) -> None:
        self.base = base

    def item(self, item_id: str) -> URIRef:
        return URIRef(f"{self.base}item:{_seg(item_id)}")

    def user(self, user_id: str) -> URIRef:
        return URIRef(f"{self.base}user:{_seg(user_id)}")

    def entity(self, key: str) -> URIRef:
        type_, norm = key.split(":", 1)
        return URIRef(f"{self.base}entity:{_seg(type_)}:{_seg(norm)}")

    def relation(self, name: str) -> URIRef:
        return URIRef(f"{self.base}rel:{name}")

    def type(self, name: str) -> URIRef:
        return URIRef(f"{self.base}type:{name}")


def facts_to_graph(rows: Sequence[dict[str, Any]], *, base: str, item_label: str) -> Graph:
    """An rdflib graph of fact rows (``read/rdf_facts``)."""
    iri = IRIs(base)
    g = Graph()
    g.bind("kgi", f"{base}item:")
    g.bind("kgr", f"{base}rel:")
    g.bind("kgt", f"{base}type:")
    for row in rows:
        if row["head_kind"] == "item":
            head = iri.item(row["head_id"])
            g.add((head, RDF.type, iri.type(item_label)))
            if row.get("head_title"):
                g.add((head, RDFS.label, Literal(row["head_title"])))
        else:
            head = iri.user(row["head_id"])
            g.add((head, RDF.type, iri.type("User")))
        ent = iri.entity(row["key"])
        g.add((ent, RDF.type, iri.type(row["type"])))
        g.add((ent, RDFS.label, Literal(row["name"])))
        g.add((head, iri.relation(row["relation"]), ent))
    return g


def export_rdf(rows: Sequence[dict[str, Any]], path: Path, *, fmt: str, base: str, item_label: str) -> int:
    g = facts_to_graph(rows, base=base, item_label=item_label)
    path.parent.mkdir(parents=True, exist_ok=True)
    g.serialize(destination=str(path), format=RDF_FORMATS[fmt], encoding="utf-8")
    return len(g)


def _local(iri: str) -> str:
    for sep in ("#", "/", ":"):
        if sep in iri:
            iri = iri.rsplit(sep, 1)[1]
    return unquote(iri)


def read_rdf_facts(
    path: Path, *, fmt: str, ontology: Ontology, source: str, item_prefix: str
) -> tuple[list[Fact], list[str]]:
    """Facts from an RDF file: ``(item)-[relation]->(object)`` triples that fit the ontology; the rest are rejects."""
    g = Graph()
    try:
        g.parse(str(path), format=RDF_FORMATS[fmt])
    except Exception as e:  # noqa: BLE001 - rdflib raises many parser-specific types
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"{path.name}: cannot parse as {fmt}: {first[:200]}; check the file and format"
        ) from e
    facts: list[Fact] = []
    rejects: list[str] = []
    for s, p, o in sorted(g, key=lambda t: (str(t[0]), str(t[1]), str(t[2]))):
        if p in (RDF.type, RDFS.label):
            continue
        relation = _local(str(p))
        rel = ontology.relations.get(relation)
        where = f"{path.name}: <{s}> <{p}> {o.n3()}"
        if rel is None:
            rejects.append(f"{where}: predicate {relation!r} is not an ontology relation")
            continue
        if not isinstance(s, URIRef) or not str(s).startswith(item_prefix):
            rejects.append(f"{where}: subject is not an item IRI under {item_prefix!r}")
            continue
        item_id = unquote(str(s)[len(item_prefix) :])
        if isinstance(o, Literal):
            name, type_ = clean_name(str(o)), (rel.tail[0] if len(rel.tail) == 1 else None)
        else:
            label = g.value(o, RDFS.label)
            name = (
                clean_name(str(label)) if label is not None else clean_name(_local(str(o)).replace("_", " "))
            )
            declared = [_local(str(t)) for t in g.objects(o, RDF.type)]
            matching = [t for t in declared if t in rel.tail]
            type_ = matching[0] if matching else (rel.tail[0] if len(rel.tail) == 1 else None)
        if not name or type_ is None or not item_id:
            rejects.append(f"{where}: cannot tell the object's name or its type among {rel.tail}")
            continue
        facts.append(
            Fact(
                head_id=item_id,
                relation=relation,
                object=name,
                object_type=type_,
                source=source,
                source_field=path.name,
            )
        )
    return facts, rejects
