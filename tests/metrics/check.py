"""Black-box checks of the service's /metrics and JSON logs (issue 7).

Drives a known sequence of requests against a running service, then:
- parses /metrics with the official Prometheus client parser;
- checks counts per route template and status, histogram counts equal to
  request counts, and that /api/v1/users/123 and /456 share one series;
- checks the in-flight gauge and process metrics exist;
- parses every JSON log line, finds the request id the client sent, and
  finds no Authorization header value and no password from a request body.

usage: check.py BASE_URL LOG_FILE ADMIN_PASSWORD
"""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

base, log_file, admin_password = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


def call(method, path, body=None, headers=None, form=None):
    data = None
    hdrs = dict(headers or {})
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        hdrs["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        hdrs["content-type"] = "application/json"
    req = urllib.request.Request(base + path, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


status, body = call("POST", "/api/v1/auth/token",
                    form={"username": "admin@example.com", "password": admin_password})
check(status == 200, f"login answers 200 (got {status})")
token = json.loads(body)["access_token"]
auth = {"authorization": f"Bearer {token}", "x-request-id": "metrics-check-1"}

secret_password = "a-password-never-logged-42"
status, _ = call("POST", "/api/v1/users", headers=auth,
                 body={"name": "Metric", "email": "metric@example.com", "age": 30,
                       "password": secret_password})
check(status == 201, f"user created (got {status})")
for user_id in ("123", "456"):
    status, _ = call("GET", f"/api/v1/users/{user_id}", headers=auth)
    check(status == 404, f"GET /api/v1/users/{user_id} answers 404 (got {status})")
status, _ = call("GET", "/api/v1/users/1", headers=auth)
check(status == 200, f"GET /api/v1/users/1 answers 200 (got {status})")
status, _ = call("GET", "/no/such/path")
check(status == 404, "an unknown path answers 404")

status, text = call("GET", "/metrics")
check(status == 200, "/metrics answers 200")
families = {f.name: f for f in text_string_to_metric_families(text.decode())}
check(True, f"/metrics parses with prometheus_client ({len(families)} families)")


def samples(family, suffix=""):
    fam = families.get(family)
    return [s for s in (fam.samples if fam else []) if s.name == family + suffix]


def value(family, suffix="", **labels):
    found = [s.value for s in samples(family, suffix)
             if all(s.labels.get(k) == v for k, v in labels.items())]
    return found[0] if len(found) == 1 else (None if not found else found)


route = "/api/v1/users/{user_id}"
check(value("http_requests", "_total", method="GET", route=route, status="404") == 2,
      "users 123 and 456 share one series: http_requests_total{route=template,status=404} == 2")
check(value("http_requests", "_total", method="GET", route=route, status="200") == 1,
      "the 200 of users/1 is its own series with count 1")
raw_paths = [s for s in samples("http_requests", "_total")
             if s.labels.get("route", "").startswith("/api/v1/users/") and "{" not in s.labels["route"]]
check(not raw_paths, "no raw path appears as a route label")
check(value("http_requests", "_total", method="GET", route="unmatched", status="404") == 1,
      "the unknown path is counted under route=unmatched")
total = sum(s.value for s in samples("http_requests", "_total")
            if s.labels.get("route") == route and s.labels.get("method") == "GET")
count = value("http_request_duration_seconds", "_count", method="GET", route=route)
check(total == 3 and count == total,
      f"the duration histogram counts every request of the route (count {count}, requests {total})")
inf = value("http_request_duration_seconds", "_bucket", method="GET", route=route, le="+Inf")
check(inf == total, f"its +Inf bucket holds them all (got {inf})")
check("http_requests_in_flight" in families, "http_requests_in_flight is exported")
for name in ("process_resident_memory_bytes", "process_cpu_seconds", "process_open_fds",
             "process_start_time_seconds"):
    check(name in families, f"process metric {name} is exported")

# The log: every line JSON, the client's request id present, no secrets.
time.sleep(0.5)
lines = [l for l in open(log_file, encoding="utf-8").read().splitlines() if l.strip()]
parsed = []
for line in lines:
    try:
        parsed.append(json.loads(line))
    except json.JSONDecodeError:
        check(False, f"log line is JSON: {line[:200]}")
check(len(parsed) == len(lines) and lines, f"all {len(lines)} log lines parse as JSON")
tagged = [p for p in parsed if "metrics-check-1" in json.dumps(p)]
check(tagged, "log lines carry the request id the client sent")
log_text = "\n".join(lines)
check(token not in log_text, "the bearer token never appears in the log")
check(secret_password not in log_text, "the password from the request body never appears in the log")
check(admin_password not in log_text, "the admin password never appears in the log")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
