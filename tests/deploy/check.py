"""Static checks of deploy/ (no container runtime on the CI machines):

- every YAML file parses;
- the Kubernetes probes and the Docker/compose health checks use paths
  the service's OpenAPI document declares;
- every environment variable the compose file and the ConfigMap set is one
  the service documents in `--help`;
- the compose file has at least three service instances behind nginx, and
  nginx.conf proxies to each of them, forwards the proxy headers, upgrades
  WebSockets and does not compress a second time.

usage: check.py OPENAPI_JSON HELP_TEXT_FILE
"""
import json
import pathlib
import re
import sys

import yaml

root = pathlib.Path(__file__).resolve().parents[2]
deploy = root / "deploy"
paths = set(json.load(open(sys.argv[1]))["paths"])
help_text = open(sys.argv[2]).read()
failures = []


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        failures.append(what)


docs = {}
for f in sorted(list(deploy.glob("*.yaml")) + list(deploy.glob("k8s/*.yaml"))):
    try:
        docs[f.relative_to(root)] = [d for d in yaml.safe_load_all(f.read_text()) if d]
        check(True, f"{f.relative_to(root)} parses")
    except yaml.YAMLError as e:
        check(False, f"{f.relative_to(root)} parses: {e}")

kinds = {d.get("kind"): d for ds in docs.values() for d in ds if isinstance(d, dict) and "kind" in d}
for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
    check(kind in kinds, f"Kubernetes {kind} present")

deployment = kinds.get("Deployment", {})
for c in deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = c.get(probe, {}).get("httpGet", {}).get("path")
        check(path in paths, f"{probe} path {path} is a service route")
grace = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("terminationGracePeriodSeconds", 0)
check(grace > 30, f"terminationGracePeriodSeconds {grace} exceeds the service's 30 s grace period")

configmap = kinds.get("ConfigMap", {})
for var in configmap.get("data", {}):
    check(re.search(rf"\b{re.escape(var)}\b", help_text) is not None, f"ConfigMap variable {var} is documented by --help")

compose = docs.get(pathlib.Path("deploy/compose.yaml"), [{}])[0]
services = compose.get("services", {})
apps = [name for name, s in services.items() if "build" in s or name.startswith("app")]
check(len(apps) >= 3, f"compose runs {len(apps)} service instances (want >= 3)")
for name in apps:
    env = services[name].get("environment", {})
    for var in env:
        check(re.search(rf"\b{re.escape(var)}\b", help_text) is not None, f"compose {name}: {var} is documented by --help")
    test = " ".join(services[name].get("healthcheck", {}).get("test", []))
    hc_paths = re.findall(r"https?://[^/\s]+(/\S*)", test)
    check(hc_paths and all(p in paths for p in hc_paths), f"compose {name}: health check {hc_paths} uses service routes")
for name in ("nginx", "postgres", "redis", "nats"):
    check(name in services, f"compose has {name}")

dockerfile = (deploy / "Dockerfile").read_text()
check("USER " in dockerfile and "USER root" not in dockerfile, "Dockerfile runs as a non-root user")
check("FROM " in dockerfile and dockerfile.count("FROM ") >= 2, "Dockerfile is multi-stage")
hc = re.findall(r"HEALTHCHECK.*?(/health/\w+)", dockerfile, re.S)
check(hc and all(p in paths for p in hc), f"Dockerfile HEALTHCHECK uses service routes {hc}")

nginx = (deploy / "nginx.conf").read_text()
for name in apps:
    check(re.search(rf"server\s+{name}:8000", nginx) is not None, f"nginx upstream includes {name}")
for needle, what in [
    ("X-Forwarded-For", "forwards X-Forwarded-For"),
    ("X-Forwarded-Proto", "forwards X-Forwarded-Proto"),
    ("Upgrade $http_upgrade", "upgrades WebSockets"),
    ("proxy_next_upstream", "fails over to the next instance"),
    ("gzip off", "does not compress a second time"),
]:
    check(needle in nginx, f"nginx {what}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
