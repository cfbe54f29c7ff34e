"""Finding formulas in model replies, however the model formatted them."""

from __future__ import annotations

import json

import pytest

from sld.discovery.proposers.llm.reply_parser import MAX_CANDIDATES, RawCandidate, extract_candidates


def formulas(text: str, n_targets: int = 1) -> list[str]:
    return [c.formula for c in extract_candidates(text, n_targets)]


def test_bare_json_keeps_formulas_and_rationales():
    reply = json.dumps({"candidates": [
        {"formula": "E + A/N^a", "rationale": "floor plus power law"},
        {"formula": "E + B/D^b", "rationale": "data term"},
    ]})
    assert extract_candidates(reply) == [
        RawCandidate("E + A/N^a", "floor plus power law"), RawCandidate("E + B/D^b", "data term"),
    ]


def test_json_in_a_fence_inside_prose_is_found():
    reply = ('Sure! Here are my ideas.\n```json\n{"candidates": [{"formula": "E + A*N^(-a)", '
             '"rationale": "x"}]}\n```\nHope this helps.')
    assert formulas(reply) == ["E + A*N^(-a)"]


def test_truncated_json_keeps_complete_candidates_and_salvages_complete_formula_strings():
    reply = ('{"candidates": [{"formula": "E + A/N^a", "rationale": "one"}, '
             '{"formula": "E + B/D^b", "rationale": "cut off mid-sent')
    assert formulas(reply) == ["E + A/N^a", "E + B/D^b"]
    assert extract_candidates(reply)[0].rationale == "one"


def test_a_formula_string_cut_off_is_dropped_not_guessed():
    reply = '{"candidates": [{"formula": "E + A/N^a", "rationale": "one"}, {"formula": "E + B/D^'
    assert formulas(reply) == ["E + A/N^a"]


def test_escapes_in_salvaged_strings_are_decoded():
    reply = '{"candidates": [{"formula": "a + b*N^c\\nd + e*D", "rationale": "two targets"'
    assert formulas(reply, n_targets=2) == ["a + b*N^c\nd + e*D"]


def test_multi_target_formulas_may_come_as_lists():
    reply = json.dumps({"candidates": [{"formula": ["c1 + k1*r1", "c2 + k2*r2"], "rationale": ""}]})
    assert formulas(reply, n_targets=2) == ["c1 + k1*r1\nc2 + k2*r2"]


def test_other_common_json_shapes_are_understood():
    assert formulas('{"formulas": ["a + b*N", "c*N^d"]}') == ["a + b*N", "c*N^d"]
    assert formulas('[{"law": "a + b*N"}, {"expression": "c*N^d"}]') == ["a + b*N", "c*N^d"]
    assert formulas('{"formula": "a + b*N", "rationale": "single"}') == ["a + b*N"]


def test_json_that_is_not_about_formulas_yields_nothing_from_it():
    assert formulas('The features are ["N", "D"] and {"note": 1}.') == []


def test_prose_with_no_formula_yields_nothing():
    assert formulas("I am not sure what law fits this data. Could you share more details?") == []
    assert formulas("") == []


def test_fenced_code_blocks_without_json():
    reply = "Try this:\n```python\nL = E + A/N**alpha + B/D**beta\n```\nand this:\n```\nE + C*(N*D)^(-g)\n```"
    assert formulas(reply) == ["L = E + A/N**alpha + B/D**beta", "E + C*(N*D)^(-g)"]


def test_a_fence_of_alternatives_for_one_target_is_split_per_line():
    assert formulas("```\n1. a + b*N^c\n2. a + b*log(N)\n```") == ["a + b*N^c", "a + b*log(N)"]


def test_a_fence_with_helpers_stays_one_law():
    reply = "```\nx = N^a\ny = D^b\nE + A/x + B/y\n```"
    assert formulas(reply) == ["x = N^a\ny = D^b\nE + A/x + B/y"]


def test_labelled_lines():
    reply = "Formula 1: E + A/N^a\n**Formula 2:** `E + B/D^b`.\nRationale: blah blah"
    assert formulas(reply) == ["E + A/N^a", "E + B/D^b"]


def test_assignment_lines_in_prose_group_and_function_style_left_sides_are_dropped():
    reply = ("My proposal:\nL(N, D) = E + A/N^alpha + B/D^beta\nwhere N = number of parameters.\n"
             "Another one:\nL = E + A/(N*D)^g\nL = E + A*exp(-k*N)\n")
    assert formulas(reply) == ["E + A/N^alpha + B/D^beta", "L = E + A/(N*D)^g", "L = E + A*exp(-k*N)"]


def test_reasoning_sections_are_ignored():
    reply = '<think>maybe {"formula": "draft + N"}?</think>{"candidates": [{"formula": "a + b*N", "rationale": ""}]}'
    assert formulas(reply) == ["a + b*N"]


def test_duplicates_are_dropped_and_the_count_is_capped():
    reply = json.dumps({"candidates": [{"formula": f"a{i % 100} + b*N", "rationale": ""} for i in range(200)]})
    found = formulas(reply)
    assert len(found) == MAX_CANDIDATES and len(set(found)) == len(found)


@pytest.mark.parametrize("reply", [
    "{" * 5000,
    "[" * 100_000 + "]",
    '{"candidates": [' + '{"formula": "a", ' * 3000,
])
def test_pathological_replies_do_not_blow_up(reply):
    assert isinstance(extract_candidates(reply), list)
