"""robots.txt decisions held to RFC 9309: its examples (section 5 and the cases in 2.2), group
selection by exact product token, and what a fetch outcome means when there is no file."""

import pytest

from wit_pipeline.web import robots
from wit_pipeline.web.robots import Robots

# RFC 9309, 5.1 "Simple Example"
SIMPLE = """\
User-Agent: *
Disallow: *.gif$
Disallow: /example/
Allow: /publications/

User-Agent: foobot
Disallow:/
Allow:/example/page.html
Allow:/example/allowed.gif

User-Agent: barbot
User-Agent: bazbot
Disallow: /example/page.html

User-Agent: quxbot

EOF
"""


def allowed(text, agent, path):
    return Robots(robots.OK, text, agent).allowed("https://www.example.com" + path)


@pytest.mark.parametrize("agent,path,expected", [
    ("foobot", "/example/page.html", True),
    ("foobot", "/example/allowed.gif", True),
    ("foobot", "/example/other.html", False),
    ("foobot", "/", False),
    ("foobot", "/publications/", False),
    ("barbot", "/example/page.html", False),
    ("bazbot", "/example/page.html", False),
    ("barbot", "/example/other.html", True),  # its own group: the * rules do not apply
    ("barbot", "/x.gif", True),
    ("quxbot", "/example/page.html", True),  # an empty group allows everything
    ("quxbot", "/a.gif", True),
    ("otherbot", "/a.gif", False),  # the * group
    ("otherbot", "/a.gif?x", True),  # `$` ends the match
    ("otherbot", "/example/x", False),
    ("otherbot", "/publications/x", True),
    ("otherbot", "/elsewhere", True),
    ("FOOBOT", "/example/page.html", True),  # tokens match case-insensitively
])
def test_rfc9309_simple_example(agent, path, expected):
    assert allowed(SIMPLE, agent, path) is expected


def test_rfc9309_longest_match():  # 5.2
    text = "User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n"
    assert allowed(text, "foobot", "/example/page/")
    assert allowed(text, "foobot", "/example/page/x.gif")
    assert not allowed(text, "foobot", "/example/page/disallowed.gif")


def test_allow_wins_a_tie():  # 2.2.2: equivalent allow and disallow rules
    assert allowed("User-agent: *\nDisallow: /folder/\nAllow: /folder/\n", "wit", "/folder/page")
    assert allowed("User-agent: *\nAllow: /folder/\nDisallow: /folder/\n", "wit", "/folder/page")


def test_groups_of_one_token_are_merged():  # 2.2.1
    text = "user-agent: ExampleBot\ndisallow: /foo\ndisallow: /bar\n\nuser-agent: ExampleBot\ndisallow: /baz\n"
    for path in ("/foo", "/bar", "/baz"):
        assert not allowed(text, "examplebot", path)
    assert allowed(text, "examplebot", "/qux")


@pytest.mark.parametrize("pattern,path,expected", [  # 2.2.3 special characters
    ("/path/file-with-a-*.html", "/path/file-with-a-star.html", False),
    ("/path/file-with-a-*.html", "/path/file-with-a-.html", False),
    ("/path/file-with-a-*.html", "/path/file-with-b.html", True),
    ("/path/foo-$", "/path/foo-", False),
    ("/path/foo-$", "/path/foo-bar", True),
    ("/path/foo-bar", "/path/foo-bar?x=1", False),  # a plain pattern is a prefix, query included
    ("/*.php$", "/index.php", False),
    ("/*.php$", "/index.php5", True),
])
def test_special_characters(pattern, path, expected):
    assert allowed(f"User-agent: *\nDisallow: {pattern}\n", "wit", path) is expected


@pytest.mark.parametrize("rule,path,expected", [  # 2.2.2 percent-encoding table
    ("/foo/bar?baz=quz", "/foo/bar?baz=quz", False),
    ("/foo/bar/ツ", "/foo/bar/%E3%83%84", False),
    ("/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84", False),
    ("/foo/bar/%62%61%7A", "/foo/bar/%62%61%7A", False),
])
def test_percent_encoding(rule, path, expected):
    assert allowed(f"User-agent: *\nDisallow: {rule}\n", "wit", path) is expected


def test_our_group_is_the_exact_token_not_a_prefix_or_substring():
    text = "User-agent: *\nDisallow: /all/\n\nUser-agent: wi\nDisallow: /wi/\n\nUser-agent: witness\nDisallow: /witness/\n"
    rb = Robots(robots.OK, text, "wit")
    assert rb.group == "*"
    assert not rb.allowed("http://h/all/x") and rb.allowed("http://h/wi/x") and rb.allowed("http://h/witness/x")
    mine = Robots(robots.OK, text + "\nUser-agent: WIT\nAllow: /\n", "wit")
    assert mine.group == "wit" and mine.allowed("http://h/all/x")


def test_robots_txt_itself_is_always_allowed():
    assert Robots(robots.OK, "User-agent: *\nDisallow: /\n", "wit").allowed("http://h/robots.txt")
    assert not Robots(robots.OK, "User-agent: *\nDisallow: /\n", "wit").allowed("http://h/robots.txt.bak")


@pytest.mark.parametrize("status,outcome", [
    (200, robots.OK), (204, robots.OK), (401, robots.UNAVAILABLE), (403, robots.UNAVAILABLE),
    (404, robots.UNAVAILABLE), (410, robots.UNAVAILABLE), (429, robots.UNREACHABLE), (500, robots.UNREACHABLE),
    (503, robots.UNREACHABLE), (304, robots.UNREACHABLE),
])
def test_fetch_status_outcomes(status, outcome):
    assert robots.outcome_of_status(status) == outcome


def test_unavailable_allows_and_unreachable_disallows_everything():
    assert Robots(robots.UNAVAILABLE).allowed("http://h/anything")
    assert not Robots(robots.UNREACHABLE).allowed("http://h/anything")
    assert not Robots(robots.UNREACHABLE).allowed("http://h/robots.txt")


def test_first_500_kib_are_read_and_a_cut_line_dropped():
    body = b"User-agent: *\n" + b"#" * (robots.MAX_BYTES - 30) + b"\nDisallow: /cut-here/and-more\n"
    text = robots.decode(body)
    assert len(text.encode()) <= robots.MAX_BYTES and "Disallow" not in text
    assert robots.decode(b"\xef\xbb\xbfUser-agent: *\n").startswith("User-agent")  # the BOM goes


def test_unparsable_bytes_are_no_rules():
    assert Robots(robots.OK, robots.decode(b"<html>\xff\xfe not robots</html>"), "wit").allowed("http://h/x")
