"""The JSON answer we ask the model for, as a pydantic model and a JSON schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_NAME = "scaling_law_candidates"


class Candidate(BaseModel):
    """One proposed law."""

    model_config = ConfigDict(extra="forbid")

    formula: str = Field(description="the law in the formula syntax; one line per target")
    rationale: str = Field(description="one or two sentences: why this law should fit and extrapolate")


class CandidateList(BaseModel):
    """The whole answer: a list of candidate laws."""

    model_config = ConfigDict(extra="forbid")

    candidates: list[Candidate]


def candidates_json_schema() -> dict[str, Any]:
    """JSON schema of ``CandidateList`` with ``$ref``s inlined.

    Inlined because some servers (grammar-based ones such as Ollama and
    llama.cpp) handle ``$defs`` poorly or not at all.
    """
    schema = CandidateList.model_json_schema()
    definitions = schema.pop("$defs", {})
    return _inline(schema, definitions)


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node
