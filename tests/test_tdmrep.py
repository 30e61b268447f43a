"""TDMRep's tdmrep.json: rule parsing, location patterns, the first matching rule, fetch outcomes."""

import json

import pytest

from wit_pipeline.web import robots, tdmrep

RULES = json.dumps([
    {"location": "/images/open/*", "tdm-reservation": 0},
    {"location": "/images/*", "tdm-reservation": 1, "tdm-policy": "https://example.org/policy.json"},
    {"location": "/exact.jpg$", "tdm-reservation": 1},
    {"location": "/*.png", "tdm-reservation": 1},
]).encode()


@pytest.mark.parametrize("path,reserved", [
    ("/images/a.jpg", True),
    ("/images/open/a.jpg", False),  # the first matching rule decides
    ("/exact.jpg", True),
    ("/exact.jpg?v=2", False),
    ("/deep/x.png", True),
    ("/other/a.jpg", False),  # no rule: no reservation
])
def test_first_matching_rule_decides(path, reserved):
    tdm, state = tdmrep.from_fetch(robots.OK, RULES)
    assert state == robots.OK
    assert tdm.reserved("https://example.org" + path) is reserved


def test_policy_is_kept():
    rules = tdmrep.parse(RULES)
    assert rules[1].policy == "https://example.org/policy.json" and rules[0].policy is None


@pytest.mark.parametrize("body", [b"<html>not found</html>", b"{}", b'"text"', b""])
def test_a_body_that_is_not_rules_reserves_nothing(body):
    tdm, state = tdmrep.from_fetch(robots.OK, body)
    assert state == "unparsable" and not tdm.reserved("http://h/x.jpg")


def test_malformed_rules_are_skipped():
    body = json.dumps([{"location": "no-slash", "tdm-reservation": 1}, {"location": "/a", "tdm-reservation": True},
                       {"location": "/b", "tdm-reservation": "1"}, "junk", {"location": "/c", "tdm-reservation": 1}])
    assert [r.location for r in tdmrep.parse(body.encode())] == ["/c"]


def test_fetch_outcomes():
    assert not tdmrep.from_fetch(robots.UNAVAILABLE, b"")[0].reserved("http://h/x")  # 404: no file
    assert tdmrep.from_fetch(robots.UNREACHABLE, b"")[0].reserved("http://h/x")  # 5xx: everything reserved


def test_percent_encoded_paths_match_their_decoded_pattern():
    tdm, _ = tdmrep.from_fetch(robots.OK, json.dumps([{"location": "/fotos/é*", "tdm-reservation": 1}]).encode())
    assert tdm.reserved("http://h/fotos/%C3%A9t%C3%A9.jpg")
