"""Checks that docker-compose.yml, the Dockerfile and infra/k8s say what the launcher says.

The launcher (services/stack/src/launch.rs) is the one description of how each service runs:
`just up` and the end-to-end tests both go through it. This script reads it and fails when a
service it starts, or a variable it gives one, is missing from the compose file or the rendered
Kubernetes objects; when the Dockerfile stops building what `just up` builds; when a workload
loses a probe, its resource requests or its replicas; and when infra/k8s/config/ (copies that
kustomize can load) differs from infra/ and web/narration/. Run through scripts/check-deploy.sh.
"""

import filecmp
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "infra/k8s/config"
# The files an operator edits, relative to infra/; copied to infra/k8s/config/.
def infra_files():
    infra = ROOT / "infra"
    files = [Path("agents.toml"), Path("clients.toml")]
    for d in ("policy", "verify-rar"):
        files += sorted(p.relative_to(infra) for p in (infra / d).iterdir() if p.is_file())
    return files


# The web UI's scenarios and narrations (WEB_NARRATION_DIR), edited by an operator too:
# web/narration/ is copied to infra/k8s/config/narration/ (ConfigMap narration).
NARRATION = ROOT / "web/narration"


def copies():
    """[(original, copy under infra/k8s/config/, (kind, generated object))] of every operator-edited
    file that reaches the cluster."""
    out = []
    for f in infra_files():
        where = {
            "policy": ("ConfigMap", "policy"),
            "verify-rar": ("ConfigMap", "verify-rar-roles"),
        }.get(f.parts[0] if len(f.parts) > 1 else "", None)
        if where is None:
            where = ("Secret", "oauth-clients") if f.name == "clients.toml" else ("ConfigMap", "agents")
        out.append((Path("infra") / f, f, where))
    for p in sorted(NARRATION.glob("*.toml")):
        out.append((p.relative_to(ROOT), Path("narration") / p.name, ("ConfigMap", "narration")))
    return out


# Stateless: they must run as replicas.
REPLICATED = {"idp", "verify-rar", "ssf", "graph"}
BUDGETED = {"idp", "verify-rar"}

errors = []


def fail(msg):
    errors.append(msg)


def launcher():
    """{service: (health path, [env names])} from launch.rs, and the start order."""
    src = (ROOT / "services/stack/src/launch.rs").read_text()
    order = re.search(r"pub const SERVICES: &\[&str\] = &\[(.*?)\];", src, re.S)
    names = re.findall(r'"([a-z-]+)"', order.group(1)) if order else []
    block = re.search(r"let services = \[(.*?)\n        \];", src, re.S)
    if not names or not block:
        sys.exit("check_deploy: cannot read SERVICES or the service table in launch.rs")
    services = {}
    for part in block.group(1).split("Service {")[1:]:
        name = re.search(r'name: "([a-z-]+)"', part).group(1)
        health = re.search(r'health: ("([^"]+)"|CARD)', part)
        path = "/.well-known/agent-card.json" if health.group(1) == "CARD" else health.group(2)
        env = sorted(set(re.findall(r'\(\s*"([A-Z][A-Z0-9_]*)",', part)))
        services[name] = (path, env)
    signals = ROOT / "services/stack/src/launch/signals.rs"
    if signals.exists():
        # The transmitter's entry, and what `connect` gives every receiver.
        text = signals.read_text()
        t = re.search(r"pub fn transmitter\(.*?\n\}", text, re.S)
        if t:
            services["ssf"] = ("/health", sorted(set(re.findall(r'\(\s*"([A-Z][A-Z0-9_]*)",', t.group(0)))))
        receivers = re.search(r"pub const RECEIVERS: &\[&str\] = &\[(.*?)\];", text, re.S)
        connect = re.search(r"pub fn connect.*?\n\}", text, re.S)
        if receivers and connect:
            every = re.findall(r'if s\.name == "([a-z-]+)"', connect.group(0))
            body = connect.group(0)
            common = re.findall(r's\.env\.push\(\("([A-Z_]+)"', body.split("if s.name ==")[0])
            special = re.findall(r's\.env\.push\(\("([A-Z_]+)"', "".join(body.split("if s.name ==")[1:]))
            for r in re.findall(r'"([a-z-]+)"', receivers.group(1)):
                if r in services:
                    extra = common + (special if r in every else [])
                    services[r] = (services[r][0], sorted(set(services[r][1]) | set(extra)))
    for n in names:
        if n not in services:
            fail(f"launch.rs: {n} is in SERVICES but its configuration was not found (parser out of date?)")
    return names, [n for n in names if n in services], services


def check_dockerfile(names):
    text = (ROOT / "Dockerfile").read_text()
    if not re.search(r"cargo build --workspace --bins\b", text):
        fail("Dockerfile: the build step must be `cargo build --workspace --bins` (what `just up` builds)")
    copied = re.search(r"for bin in ([a-z -]+); do", text)
    copied = set(copied.group(1).split()) if copied else set()
    for n in names:
        if n not in copied:
            fail(f"Dockerfile: the image does not carry the {n} binary (the `for bin in` list)")
    stages = set(re.findall(r"^FROM \S+ AS (\S+)", text, re.M))
    users = re.findall(r"^USER (\S+)", text, re.M)
    if not users or users[-1].split(":")[0] in ("0", "root"):
        fail("Dockerfile: the runtime image must run as a non-root user")
    if "HEALTHCHECK" in text:
        fail("Dockerfile: health checks belong in the compose file and the probes, per service")
    return stages


def check_compose(names, services, stages):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    svcs = compose.get("services", {})
    if not any(str(s.get("image", "")).startswith("postgres:") for s in svcs.values()):
        fail("docker-compose.yml: no Postgres from the official image")
    for n in names:
        s = svcs.get(n)
        if s is None:
            fail(f"docker-compose.yml: no service {n} (just up starts it)")
            continue
        env = s.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        for var in services[n][1] + ["DATABASE_URL"]:
            if var not in env:
                fail(f"docker-compose.yml: {n} lacks {var}, which just up gives it")
        test = " ".join(map(str, (s.get("healthcheck") or {}).get("test", [])))
        if services[n][0] not in test:
            fail(f"docker-compose.yml: {n}'s health check must ask {services[n][0]}")
        if s.get("command", [None])[0] != n:
            fail(f"docker-compose.yml: {n} must run the {n} binary")
    for name, s in svcs.items():
        target = (s.get("build") or {}).get("target")
        if target and target not in stages:
            fail(f"docker-compose.yml: {name} builds target {target}, not a Dockerfile stage")
        for dep in s.get("depends_on") or {}:
            if dep not in svcs:
                fail(f"docker-compose.yml: {name} depends on unknown service {dep}")
        if "build" in s and str(s.get("user", "")).split(":")[0] in ("", "0", "root"):
            fail(f"docker-compose.yml: {name} must run as the image's non-root user")


def check_k8s(rendered, names, services):
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    workloads = {
        d["metadata"]["name"]: d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
    }
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for n in names:
        w = workloads.get(n)
        if w is None:
            fail(f"infra/k8s: no Deployment or StatefulSet {n}")
            continue
        if ("Service", n) not in kinds:
            fail(f"infra/k8s: no Service {n}")
        c = next(c for c in w["spec"]["template"]["spec"]["containers"] if c["name"] == n)
        have = {e["name"] for e in c.get("env", [])}
        for var in services[n][1] + ["DATABASE_URL"]:
            if var not in have:
                fail(f"infra/k8s: {n} lacks {var}, which just up gives it")
        if (c.get("readinessProbe", {}).get("httpGet") or {}).get("path") != services[n][0]:
            fail(f"infra/k8s: {n}'s readiness probe must ask {services[n][0]}")
    for name, w in workloads.items():
        for c in w["spec"]["template"]["spec"]["containers"]:
            if "livenessProbe" not in c or "readinessProbe" not in c:
                fail(f"infra/k8s: {name} needs readiness and liveness probes")
            if not (c.get("resources") or {}).get("requests"):
                fail(f"infra/k8s: {name} needs resource requests")
        if name in REPLICATED and w["spec"].get("replicas", 1) < 2:
            fail(f"infra/k8s: {name} is stateless and must run at least 2 replicas")
    budgets = {
        tuple(d["spec"]["selector"]["matchLabels"].items())
        for d in docs
        if d["kind"] == "PodDisruptionBudget"
    }
    for n in BUDGETED:
        if (("app.kubernetes.io/name", n),) not in budgets:
            fail(f"infra/k8s: no PodDisruptionBudget for {n}")
    # Every operator-edited file reaches the cluster.
    def data_keys(kind, prefix):
        keys = set()
        for d in docs:
            if d["kind"] == kind and d["metadata"]["name"].startswith(prefix):
                keys |= set((d.get("data") or {}).keys())
        return keys
    for original, _, where in copies():
        if original.name not in data_keys(*where):
            fail(f"infra/k8s: {original} is not in {where[0]} {where[1]} (kustomization.yaml's generators)")


def check_copies(sync):
    pairs = {copy: original for original, copy, _ in copies()}
    for f, original in sorted(pairs.items()):
        src, dst = ROOT / original, CONFIG / f
        if sync:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        elif not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            fail(f"infra/k8s/config/{f} differs from {original}: run scripts/check-deploy.sh --sync")
    for p in CONFIG.rglob("*"):
        if p.is_file() and p.relative_to(CONFIG) not in pairs:
            if sync:
                p.unlink()
            else:
                fail(f"infra/k8s/config/{p.relative_to(CONFIG)} has no original in infra/ or web/narration/")


def main():
    if sys.argv[1:] == ["--sync"]:
        check_copies(sync=True)
        print("infra/k8s/config/ refreshed from infra/ and web/narration/ (list new files in infra/k8s/kustomization.yaml)")
        return
    _, names, services = launcher()
    stages = check_dockerfile(names)
    check_compose(names, services, stages)
    check_k8s(sys.argv[1], names, services)
    check_copies(sync=False)
    if errors:
        print("\n".join(f"  - {e}" for e in errors), file=sys.stderr)
        sys.exit(f"{len(errors)} problem(s) in the deployment files")


if __name__ == "__main__":
    main()
