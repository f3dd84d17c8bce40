"""The access review as files: CSV and JSON for tools, one self-contained HTML page for auditors.

The page has no external resource (inline CSS and script, a Content-Security-Policy that allows only
that script by its hash), sorts by any column on a click, and marks high-risk and expiring grants.
Jinja2 autoescapes every value: user names, owners and policy names come from tickets.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from jinja2 import Environment
from pydantic import BaseModel

from local.review import GrantRow, UserView
from shared.durations import format_duration

CSV_COLUMNS = [
    "user_name",
    "owner",
    "access_mode",
    "user_status",
    "policy_type",
    "policy_name",
    "scope",
    "status",
    "ticket_id",
    "ticket_status",
    "requester",
    "approvers",
    "approved_at",
    "break_glass",
    "expires_at",
    "expiring",
    "high_risk",
    "drift",
]


class Review(BaseModel):
    """Who holds what, at which scope, approved by whom and when, expiring when, drift found."""

    generated_at: datetime
    store: str
    window: timedelta
    drift_checked: bool
    users: list[UserView]

    @property
    def grants(self) -> list[GrantRow]:
        return [g for u in self.users for g in u.grants]

    def summary(self) -> dict[str, int]:
        active = [g for g in self.grants if g.status == "active"]
        return {
            "users": len(self.users),
            "active grants": len(active),
            "high-risk": sum(g.high_risk for g in active),
            "expiring": sum(g.expiring for g in active),
            "findings": sum(len(u.findings) for u in self.users),
        }


def safe_store(url: str) -> str:
    """The store's URL without credentials (a redis:// URL may carry a password)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def to_csv(review: Review) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in review.grants:
        data = row.model_dump()
        writer.writerow([_cell(data[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def to_json(review: Review) -> str:
    document = {
        "generated_at": review.generated_at.isoformat(),
        "store": review.store,
        "window": format_duration(review.window),
        "drift_checked": review.drift_checked,
        "summary": review.summary(),
        "users": [u.model_dump(mode="json") for u in review.users],
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


SCRIPT = """
(function () {
  var table = document.getElementById("grants");
  var headers = table.tHead.rows[0].cells;
  function key(cell) { return cell.getAttribute("data-sort") || cell.textContent.trim().toLowerCase(); }
  function sortBy(index) {
    var header = headers[index];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    for (var i = 0; i < headers.length; i++) { headers[i].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(headers, function (header, index) {
    var button = header.querySelector("button");
    button.addEventListener("click", function () { sortBy(index); });
  });
})();
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '{{ script_hash }}'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ramflow access review {{ generated }}</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2430; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #d8dde6; padding: .35rem .5rem; text-align: left; vertical-align: top; }
td.time { white-space: nowrap; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; } th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr.high-risk { background: #fdecec; } tr.expiring { background: #fff6dc; } tr.high-risk.expiring { background: #fbe2d0; }
tr.inactive { color: #7a8494; }
.badge { white-space: nowrap; display: inline-block; border-radius: .6rem; padding: 0 .45rem; font-size: .8rem; font-weight: 600; margin-right: .2rem; }
.badge.high-risk { background: #c62828; color: #fff; } .badge.expiring { background: #f0a500; color: #1d2430; }
.badge.drift { background: #6a1b9a; color: #fff; }
dl.summary { display: flex; gap: 2rem; } dl.summary dt { font-size: .8rem; color: #586173; } dl.summary dd { margin: 0; font-size: 1.3rem; }
</style>
</head>
<body>
<h1>ramflow access review</h1>
<p>Generated {{ generated }} (times in UTC) from the store <code>{{ review.store }}</code>; grants ending within {{ window }} are marked expiring;
drift {{ "was checked with a read-only reconcile" if review.drift_checked else "was not checked (run with --drift)" }}.</p>
<dl class="summary">{% for name, count in summary.items() %}<div><dt>{{ name }}</dt><dd data-summary="{{ name }}">{{ count }}</dd></div>{% endfor %}</dl>
<h2>Who holds what</h2>
<table id="grants">
<thead><tr>{% for title in columns %}<th scope="col"><button type="button">{{ title }}</button></th>{% endfor %}</tr></thead>
<tbody>
{% for g in grants %}<tr class="grant{{ ' high-risk' if g.high_risk }}{{ ' expiring' if g.expiring }}{{ ' inactive' if g.status != 'active' }}" data-user="{{ g.user_name }}">
<td>{{ g.user_name }}</td><td>{{ g.owner }}</td><td>{{ g.access_mode }}</td>
<td>{{ g.policy_type }}:{{ g.policy_name }}</td><td>{{ g.scope }}</td><td>{{ g.status }}</td><td>{{ g.ticket_id }}</td>
<td>{{ g.requester }}</td><td>{{ g.approvers | join(", ") or "-" }}</td>
<td class="time" data-sort="{{ g.approved_at.isoformat() if g.approved_at else '' }}">{{ when(g.approved_at) }}</td>
<td class="time" data-sort="{{ g.expires_at.isoformat() if g.expires_at else '9999' }}">{{ when(g.expires_at) }}</td>
<td data-sort="{{ (0 if g.high_risk else 2) + (0 if g.expiring else 1) }}">{% if g.high_risk %}<span class="badge high-risk">high-risk</span>{% endif %}{% if g.expiring %}<span class="badge expiring">expiring</span>{% endif %}{% for d in g.drift %}<span class="badge drift">drift</span>{% endfor %}</td>
<td>{{ g.drift | join("; ") }}</td>
</tr>
{% else %}<tr><td colspan="{{ columns | length }}">No managed users hold grants.</td></tr>
{% endfor %}</tbody>
</table>
<h2>Findings</h2>
{% if findings %}<table id="findings"><thead><tr><th scope="col">user</th><th scope="col">finding</th><th scope="col">detail</th><th scope="col">severity</th><th scope="col">found by</th></tr></thead>
<tbody>{% for user, f in findings %}<tr><td>{{ user }}</td><td>{{ f.kind }}</td><td>{{ f.detail }}</td><td>{{ f.severity }}</td><td>{{ f.source }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p>No findings.</p>{% endif %}
<script>{{ script | safe }}</script>
</body>
</html>
"""

COLUMNS = [
    "user",
    "owner",
    "mode",
    "policy",
    "scope",
    "status",
    "ticket",
    "requested by",
    "approved by",
    "approved",
    "expires",
    "marks",
    "drift",
]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def to_html(review: Review) -> str:
    env = Environment(autoescape=True, trim_blocks=False)
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    return env.from_string(TEMPLATE).render(
        review=review,
        generated=_when(review.generated_at),
        window=format_duration(review.window),
        summary=review.summary(),
        columns=COLUMNS,
        grants=sorted(
            review.grants, key=lambda g: (not g.high_risk, not g.expiring, g.user_name, g.policy_name)
        ),
        findings=[(u.user_name, f) for u in review.users for f in u.findings],
        when=_when,
        script=SCRIPT,
        script_hash=script_hash,
    )


RENDERERS = {"csv": to_csv, "json": to_json, "html": to_html}
