#!/usr/bin/env python3
"""Semantic checks of k8s-manifests/ that schema validation cannot do.

kubernetes-validate checks each resource against the API's JSON schema. This checks how the
resources fit together, with the image and with the binaries: the classic recipe's names,
replicas, ports, nodePorts and commands; selectors against pod template labels; Service
targetPorts and probe ports against declared container ports; downward-API references;
environment variable names against the ones the binaries (their config.rs) and the start
scripts read; the security context; volumes; the grace period against the worker's drain;
that each command exists in the image; that the two Dockerfiles' runtime stages agree.
The worker variant with a Java runtime and Spark's jars: its Dockerfile is the plain one's
runtime stage plus JAVA_HOME and SPARK_HOME where assemble-rootfs.sh puts them; each
kustomize Component under components/ patches resources that exist, and the patched
resources pass the same checks (plus the JVMs' off-heap memory for the variant's workers).

Usage: check_manifests.py [MANIFEST_DIR [SOURCE_ROOT]]   (exit 1 and one line per problem)
"""

from __future__ import annotations

import copy
import math
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The classic recipe (shared notes, section 4), kept recognisable.
EXPECTED_RESOURCES = {
    "spark-master-controller.yaml": {("ReplicationController", "spark-master-controller")},
    "spark-master-service.yaml": {("Service", "spark-master-nodeport"), ("Service", "spark-master")},
    "spark-worker-controller.yaml": {("ReplicationController", "spark-worker-controller")},
}
RECIPE_RCS = {
    "spark-master-controller": {
        "replicas": 1,
        "selector": {"component": "spark-master"},
        "container": "spark-master",
        "command": ["/start-master"],
        "ports": {7077, 8080},
        "hostname": "spark-master-hostname",
        "subdomain": "spark-master-nodeport",
    },
    "spark-worker-controller": {
        "replicas": 2,
        "selector": {"component": "spark-worker"},
        "container": "spark-worker",
        "command": ["/start-worker"],
        "ports": {8081},
    },
}
# Role of a container, by its command: which binary's configuration it is.
ROLE_BY_COMMAND = {"/start-master": "master", "/start-worker": "worker"}
ROLE_SCRIPT = {"master": "start-master", "worker": "start-worker"}

FIELD_PATHS = {
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
}
CPU_DIVISORS = {"1m", "1"}
MEMORY_DIVISORS = {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
RESOURCE_FIELDS = {
    "limits.cpu": CPU_DIVISORS,
    "requests.cpu": CPU_DIVISORS,
    "limits.memory": MEMORY_DIVISORS,
    "requests.memory": MEMORY_DIVISORS,
    "limits.ephemeral-storage": MEMORY_DIVISORS,
    "requests.ephemeral-storage": MEMORY_DIVISORS,
}
IANA_SVC_NAME = re.compile(r"^(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
NODE_PORT_RANGE = range(30000, 32768)


def parse_cpu(q) -> float:
    s = str(q)
    return float(s[:-1]) / 1000 if s.endswith("m") else float(s)


MEM_SUFFIX = {
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
    "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4, "P": 1000**5, "E": 1000**6,
}


def parse_bytes(q) -> float:
    s = str(q)
    for suffix in sorted(MEM_SUFFIX, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * MEM_SUFFIX[suffix]
    return float(s)


def parse_duration_s(v: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|min|h)?\s*", v)
    if not m:
        raise ValueError(v)
    n = float(m.group(1))
    return n * {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]


def java_opts(v: str) -> dict[str, str]:
    out = {}
    for tok in v.split():
        if tok.startswith("-D") and "=" in tok:
            k, val = tok[2:].split("=", 1)
            out[k] = val
    return out


class Checker:
    def __init__(self, manifest_dir: Path, source_root: Path):
        self.dir = manifest_dir
        self.src = source_root
        self.errors: list[str] = []

    def err(self, where: str, msg: str) -> None:
        self.errors.append(f"{where}: {msg}")

    # ---- what the image and the binaries provide ----------------------------------------

    def image_files(self) -> tuple[set[str], set[str]]:
        """(paths the image installs, start scripts available) from assemble-rootfs.sh."""
        script = (self.dir / "image" / "assemble-rootfs.sh").read_text()
        paths: set[str] = set()
        m = re.search(r'^binaries="([^"]*)"', script, re.M)
        for b in (m.group(1).split() if m else []):
            paths.add(f"/opt/flint/bin/{b}")
        m = re.search(r"^for s in ([^;]*); do", script, re.M)
        scripts = set(m.group(1).split()) if m else set()
        for s in scripts:
            if (self.dir / "image" / s).is_file():
                paths.add(f"/{s}")
        for m in re.finditer(r"^tool \S+ (\S+)$", script, re.M):
            paths.add(m.group(1))
        return paths, scripts

    def names_read(self, role: str) -> set[str]:
        """Environment variables the role's binary and start scripts read."""
        names: set[str] = set()
        # The role's own configuration, and the helpers both daemons share (SPARK_CONF_DIR).
        for rs in (self.src / role / "src" / "config.rs", self.src / "proto" / "domain" / "src" / "conf.rs"):
            text = rs.read_text()
            names |= set(re.findall(r'"([A-Z][A-Z0-9_]+)"', text))
            if "temp_dir()" in text:
                names.add("TMPDIR")
        logging = (self.src / "proto" / "daemon" / "src" / "lib.rs").read_text()
        if "try_from_default_env" in logging:
            names.add("RUST_LOG")  # tracing_subscriber's EnvFilter default variable
        # What the role's start script reads (start-common.sh only unsets service links).
        text = (self.dir / "image" / ROLE_SCRIPT[role]).read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        names |= set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", code))
        return names

    # ---- the checks ---------------------------------------------------------------------

    def run(self) -> list[str]:
        kust = yaml.safe_load((self.dir / "kustomization.yaml").read_text())
        if kust.get("kind") != "Kustomization":
            self.err("kustomization.yaml", "kind is not Kustomization")
        listed = list(kust.get("resources") or [])
        present = sorted(p.name for p in self.dir.glob("*.yaml") if p.name != "kustomization.yaml")
        if sorted(listed) != present:
            self.err("kustomization.yaml", f"resources {sorted(listed)} != manifest files {present}")
        image_names = {i.get("name") for i in kust.get("images") or []}

        docs: list[tuple[str, dict]] = []
        for name in present:
            found = set()
            for d in yaml.safe_load_all((self.dir / name).read_text()):
                if d is None:
                    continue
                docs.append((name, d))
                found.add((d.get("kind"), (d.get("metadata") or {}).get("name")))
            want = EXPECTED_RESOURCES.get(name)
            if want is None:
                self.err(name, "unexpected manifest file")
            elif found != want:
                self.err(name, f"resources {sorted(found)} != expected {sorted(want)}")

        rcs = [(f, d) for f, d in docs if d.get("kind") == "ReplicationController"]
        services = [(f, d) for f, d in docs if d.get("kind") == "Service"]
        image_paths, scripts = self.image_files()

        for f, rc in rcs:
            self.check_rc(f, rc, image_names, image_paths)
        node_ports: dict[int, str] = {}
        for f, svc in services:
            self.check_service(f, svc, rcs, node_ports)
        self.check_scripts(scripts)
        self.check_dockerfiles()
        self.check_spark_variant(image_paths)
        self.check_components(docs, kust, image_names, image_paths)
        return self.errors

    def check_rc(self, f: str, rc: dict, image_names: set, image_paths: set[str]) -> None:
        name = rc["metadata"]["name"]
        where = f"{f} {name}"
        spec = rc.get("spec") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        selector = spec.get("selector") or {}
        if not selector:
            self.err(where, "empty selector")
        if any(labels.get(k) != v for k, v in selector.items()):
            self.err(where, f"selector {selector} does not match the template labels {labels}")
        pod = tmpl.get("spec") or {}
        recipe = RECIPE_RCS.get(name)
        if recipe is None:
            self.err(where, "not a ReplicationController of the recipe")
            return
        if spec.get("replicas") != recipe["replicas"]:
            self.err(where, f"replicas {spec.get('replicas')} != {recipe['replicas']}")
        if selector != recipe["selector"]:
            self.err(where, f"selector {selector} != {recipe['selector']}")
        for key in ("hostname", "subdomain"):
            if key in recipe and pod.get(key) != recipe[key]:
                self.err(where, f"{key} {pod.get(key)!r} != {recipe[key]!r}")
        if pod.get("enableServiceLinks") is not False:
            self.err(where, "enableServiceLinks must be false (SPARK_MASTER_PORT=tcp://...)")
        psc = pod.get("securityContext") or {}
        if psc.get("runAsNonRoot") is not True:
            self.err(where, "securityContext.runAsNonRoot must be true")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for v in volumes.values():
            if "emptyDir" in v and not (v["emptyDir"] or {}).get("sizeLimit"):
                self.err(where, f"emptyDir {v['name']} has no sizeLimit")
        containers = pod.get("containers") or []
        by_name = {c["name"]: c for c in containers}
        if recipe["container"] not in by_name:
            self.err(where, f"no container {recipe['container']}")
        for c in containers:
            self.check_container(f"{where} {c['name']}", c, pod, psc, volumes, by_name, image_names, image_paths)
        c = by_name.get(recipe["container"])
        if c is not None:
            if c.get("command") != recipe["command"]:
                self.err(where, f"command {c.get('command')} != {recipe['command']}")
            ports = {p.get("containerPort") for p in c.get("ports") or []}
            if not recipe["ports"] <= ports:
                self.err(where, f"container ports {sorted(ports)} lack {sorted(recipe['ports'] - ports)}")
            if name == "spark-worker-controller":
                self.check_worker_grace(where, pod, c)

    def check_container(self, where, c, pod, psc, volumes, by_name, image_names, image_paths) -> None:
        image = str(c.get("image", ""))
        if image.split(":")[0] not in image_names:
            self.err(where, f"image {image!r} is not named in kustomization.yaml images")
        command = c.get("command") or []
        if not command:
            self.err(where, "no command (the image has no entry point)")
        elif command[0] not in image_paths:
            self.err(where, f"command {command[0]} is not in the image")
        role = ROLE_BY_COMMAND.get(command[0] if command else "")

        # Ports and probes.
        ports = c.get("ports") or []
        names = [p.get("name") for p in ports if p.get("name")]
        if len(names) != len(set(names)):
            self.err(where, f"duplicate port names {names}")
        for n in names:
            if not IANA_SVC_NAME.match(n):
                self.err(where, f"port name {n!r} is not a valid IANA service name")
        for kind, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", None)):
            probe = c.get(kind)
            if probe is None:
                if kind != "startupProbe":
                    self.err(where, f"no {kind}")
                continue
            handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
            if handler is None:
                self.err(where, f"{kind} is not httpGet/tcpSocket/grpc")
                continue
            if not self.port_declared(c, handler.get("port")):
                self.err(where, f"{kind} port {handler.get('port')!r} is not a declared container port")
            if path and probe.get("httpGet", {}).get("path") != path:
                self.err(where, f"{kind} must be httpGet {path}")

        # Resources.
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for r in ("cpu", "memory"):
            if r not in limits or r not in requests:
                self.err(where, f"{r} request and limit are required")
        if "cpu" in limits and "cpu" in requests and parse_cpu(requests["cpu"]) > parse_cpu(limits["cpu"]):
            self.err(where, "cpu request above its limit")
        if "memory" in limits and "memory" in requests and parse_bytes(requests["memory"]) > parse_bytes(limits["memory"]):
            self.err(where, "memory request above its limit")

        # Security.
        sc = c.get("securityContext") or {}
        run_as = sc.get("runAsUser", psc.get("runAsUser"))
        if not isinstance(run_as, int) or run_as == 0:
            self.err(where, "runAsUser must be set to a non-zero uid")
        if sc.get("readOnlyRootFilesystem") is not True:
            self.err(where, "readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            self.err(where, "allowPrivilegeEscalation must be false")
        if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
            self.err(where, "capabilities must drop ALL")

        # Volumes: a read-only root needs writable /tmp (and the work dir).
        mounts = c.get("volumeMounts") or []
        for m in mounts:
            if m.get("name") not in volumes:
                self.err(where, f"volumeMount {m.get('name')} has no volume")
        mount_paths = [m.get("mountPath", "") for m in mounts]
        if "/tmp" not in mount_paths:
            self.err(where, "/tmp is not mounted (read-only root filesystem)")

        # Environment.
        env = c.get("env") or []
        defined: list[str] = []
        allowed = self.names_read(role) if role else set()
        for e in env:
            n = e.get("name", "")
            if role and n not in allowed:
                self.err(where, f"env {n} is not read by flint-{role} or its start scripts")
            if "value" in e:
                for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(e["value"])):
                    if ref not in defined:
                        self.err(where, f"env {n} refers to $({ref}), not defined before it")
            vf = e.get("valueFrom") or {}
            if "fieldRef" in vf:
                fp = vf["fieldRef"].get("fieldPath", "")
                if fp not in FIELD_PATHS and not re.fullmatch(r"metadata\.(labels|annotations)\['[^']+'\]", fp):
                    self.err(where, f"env {n}: fieldRef {fp!r} is not available to the downward API")
            if "resourceFieldRef" in vf:
                self.check_resource_ref(where, n, vf["resourceFieldRef"], c, by_name)
            defined.append(n)
        values = {e["name"]: str(e["value"]) for e in env if "value" in e}
        for k in ("SPARK_WORKER_MEMORY",):
            if k in values and not re.fullmatch(r"(?i)\d+[kmgtp]b?", values[k]):
                self.err(where, f"{k}={values[k]!r} needs a unit suffix (m, g)")
        for k in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS"):
            if k in values and any(not t.startswith("-D") or "=" not in t for t in values[k].split()):
                self.err(where, f"{k} must be -Dkey=value options")
        if "SPARK_WORKER_DIR" in values:
            d = values["SPARK_WORKER_DIR"]
            if not any(d == p or d.startswith(p.rstrip("/") + "/") for p in mount_paths):
                self.err(where, f"SPARK_WORKER_DIR {d} is not on a mounted volume")
        if role == "worker":
            resolved = {e["name"] for e in env}
            if "SPARK_WORKER_CORES" not in resolved:
                self.err(where, "SPARK_WORKER_CORES is not set (downward API limits.cpu)")
            if "SPARK_WORKER_MEMORY" not in resolved and "FLINT_WORKER_MEMORY_LIMIT_MB" not in resolved:
                self.err(where, "worker memory is not derived from the container's limit")

    def check_resource_ref(self, where, n, ref, c, by_name) -> None:
        res = ref.get("resource", "")
        target = by_name.get(ref.get("containerName") or c["name"])
        if res not in RESOURCE_FIELDS:
            self.err(where, f"env {n}: resourceFieldRef {res!r} is not a downward API resource")
            return
        divisor = str(ref.get("divisor", "1"))
        if divisor not in RESOURCE_FIELDS[res]:
            self.err(where, f"env {n}: divisor {divisor!r} is not allowed for {res}")
        if target is None:
            self.err(where, f"env {n}: containerName {ref.get('containerName')!r} does not exist")
            return
        kind, r = res.split(".", 1)
        value = ((target.get("resources") or {}).get(kind) or {}).get(r)
        if value is None:
            # Unset, the downward API reports the node's allocatable amount.
            self.err(where, f"env {n}: {res} is not set on container {target['name']}")
        elif res == "limits.cpu" and divisor == "1" and not float(parse_cpu(value)).is_integer():
            self.err(where, f"env {n}: limits.cpu {value} is rounded up to {math.ceil(parse_cpu(value))}; use whole CPUs")

    def check_worker_grace(self, where, pod, c) -> None:
        opts = {e["name"]: str(e.get("value", "")) for e in c.get("env") or []}.get("SPARK_WORKER_OPTS", "")
        kill_grace = parse_duration_s(java_opts(opts).get("spark.worker.killGracePeriod", "5s"))
        grace = pod.get("terminationGracePeriodSeconds", 30)
        # SIGTERM to the children, up to kill_grace, SIGKILL, tell the master, exit.
        if grace < kill_grace + 5:
            self.err(where, f"terminationGracePeriodSeconds {grace} leaves no room for the drain "
                            f"(spark.worker.killGracePeriod {kill_grace:g}s + 5s)")

    @staticmethod
    def port_declared(c: dict, port) -> bool:
        for p in c.get("ports") or []:
            if port == p.get("containerPort") or (isinstance(port, str) and port == p.get("name")):
                return True
        return False

    def check_service(self, f, svc, rcs, node_ports) -> None:
        name = svc["metadata"]["name"]
        where = f"{f} {name}"
        if not DNS_1035.match(name):
            self.err(where, "name is not a DNS-1035 label")
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        templates = []
        for _, rc in rcs:
            tmpl = rc["spec"]["template"]
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                templates.append(tmpl)
        if not templates:
            self.err(where, f"selector {selector} matches no pod template")
        stype = spec.get("type", "ClusterIP")
        ports = spec.get("ports") or []
        pnames = [p.get("name") for p in ports]
        if len(pnames) != len(set(pnames)):
            self.err(where, f"duplicate port names {pnames}")
        for p in ports:
            target = p.get("targetPort", p.get("port"))
            for tmpl in templates:
                if not any(self.port_declared(c, target) for c in tmpl["spec"]["containers"]):
                    self.err(where, f"targetPort {target!r} of port {p.get('name')} is not a container port")
            np = p.get("nodePort")
            if np is not None:
                if stype not in ("NodePort", "LoadBalancer"):
                    self.err(where, f"nodePort {np} on a {stype} Service")
                if np not in NODE_PORT_RANGE:
                    self.err(where, f"nodePort {np} is outside 30000-32767")
                if np in node_ports:
                    self.err(where, f"nodePort {np} is also used by {node_ports[np]}")
                node_ports[np] = name
        by_port = {p.get("port"): p for p in ports}
        if name == "spark-master":
            if stype != "ClusterIP" or spec.get("clusterIP") == "None":
                self.err(where, "must be a ClusterIP Service (not headless)")
            for port, pname in ((7077, "spark"), (8080, "http")):
                if by_port.get(port, {}).get("name") != pname:
                    self.err(where, f"needs port {port} named {pname}")
        if name == "spark-master-nodeport":
            if stype != "NodePort":
                self.err(where, "must be a NodePort Service")
            for port, np in ((8080, 30080), (7077, 30077)):
                if by_port.get(port, {}).get("nodePort") != np:
                    self.err(where, f"port {port} needs nodePort {np}")

    def check_scripts(self, scripts: set[str]) -> None:
        for s in sorted(scripts):
            p = self.dir / "image" / s
            if not p.is_file():
                self.err(f"image/{s}", "missing")
                continue
            text = p.read_text()
            if not text.startswith("#!/bin/sh\n"):
                self.err(f"image/{s}", "must be a POSIX sh script (#!/bin/sh)")
            if s.startswith("start-") and not s.endswith(".sh"):
                if not p.stat().st_mode & 0o111:
                    self.err(f"image/{s}", "not executable")
                code = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
                if not code or not code[-1].startswith("exec "):
                    self.err(f"image/{s}", "must end in exec (the binary is PID 1 and handles SIGTERM)")

    def runtime_stage(self, path: Path) -> list[str]:
        """The instructions of a Dockerfile's last `FROM scratch AS runtime` stage, but COPY."""
        text = re.sub(r"\\\n\s*", " ", path.read_text())
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        starts = [i for i, ln in enumerate(lines) if re.match(r"(?i)FROM\s+scratch\s+AS\s+runtime$", ln)]
        if not starts:
            self.err(path.name, "has no 'FROM scratch AS runtime' stage")
            return []
        stage = lines[starts[-1] + 1 :]
        # The first COPY brings the root filesystem in, from a stage or from the context.
        return [ln for ln in stage if not ln.upper().startswith("COPY ")]

    def check_dockerfiles(self) -> None:
        main = self.runtime_stage(self.src / "Dockerfile")
        local = self.runtime_stage(self.dir / "image" / "Dockerfile.scratch")
        if main != local:
            self.err("Dockerfile", f"runtime stage differs from image/Dockerfile.scratch: {main} != {local}")

    # ---- the worker variant with a Java runtime and Spark's jars ----------------------------

    @staticmethod
    def env_of(stage: list[str]) -> dict[str, str]:
        """ENV instructions of a stage (the KEY=VALUE form), later ones winning."""
        env: dict[str, str] = {}
        for ln in stage:
            if ln.upper().startswith("ENV "):
                for k, v in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', ln[4:]):
                    env[k] = v.strip('"')
        return env

    def variant_layout(self) -> dict[str, str]:
        """JAVA_HOME and SPARK_HOME as assemble-rootfs.sh lays them out."""
        script = (self.dir / "image" / "assemble-rootfs.sh").read_text()
        out = {}
        for var, key in (("java_dest", "JAVA_HOME"), ("spark_dest", "SPARK_HOME")):
            m = re.search(rf"^{var}=(\S+)$", script, re.M)
            if m:
                out[key] = m.group(1)
        return out

    def check_spark_variant(self, image_paths: set[str]) -> None:
        where = "image/Dockerfile.scratch-spark"
        path = self.dir / "image" / "Dockerfile.scratch-spark"
        if not path.is_file():
            self.err(where, "missing (the worker variant for Spark JVM executors)")
            return
        plain = self.runtime_stage(self.dir / "image" / "Dockerfile.scratch")
        variant = self.runtime_stage(path)

        def same_kind(stage: list[str]) -> list[str]:
            # What must not differ: everything but the labels, the environment and the CMD.
            return [ln for ln in stage if ln.split()[0].upper() not in ("LABEL", "ENV", "CMD")]

        if same_kind(plain) != same_kind(variant):
            self.err(where, f"differs from image/Dockerfile.scratch beyond LABEL/ENV/CMD: "
                            f"{same_kind(variant)} != {same_kind(plain)}")
        env, plain_env = self.env_of(variant), self.env_of(plain)
        layout = self.variant_layout()
        if set(layout) != {"JAVA_HOME", "SPARK_HOME"}:
            self.err("image/assemble-rootfs.sh", "no java_dest=/spark_dest= (where the variant's Java and Spark go)")
        for key, want in layout.items():
            if env.get(key) != want:
                self.err(where, f"ENV {key}={env.get(key)!r}, but assemble-rootfs.sh puts it at {want}")
        path_dirs = env.get("PATH", "").split(":")
        java_bin = f"{layout.get('JAVA_HOME', '')}/bin"
        if java_bin not in path_dirs:
            self.err(where, f"PATH {env.get('PATH')!r} lacks {java_bin} (java -version must work)")
        missing = [d for d in plain_env.get("PATH", "").split(":") if d not in path_dirs]
        if missing:
            self.err(where, f"PATH lacks {missing} of the plain image's PATH")
        for ln in variant:
            m = re.match(r'(?i)CMD\s+\["([^"]+)"', ln)
            if m and m.group(1) not in image_paths:
                self.err(where, f"CMD {m.group(1)} is not in the image")

    # ---- kustomize components -------------------------------------------------------------

    # Strategic-merge keys of the lists the components patch (others are replaced).
    MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
                  "volumeMounts": "mountPath", "ports": "containerPort"}

    @classmethod
    def strategic_merge(cls, base, patch, field: str = ""):
        if isinstance(base, dict) and isinstance(patch, dict):
            out = dict(base)
            for k, v in patch.items():
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = cls.strategic_merge(out[k], v, k) if k in out else copy.deepcopy(v)
            return out
        key = cls.MERGE_KEYS.get(field)
        if key and isinstance(base, list) and isinstance(patch, list):
            out = [copy.deepcopy(x) for x in base]
            for item in patch:
                i = next((i for i, x in enumerate(out) if x.get(key) == item.get(key)), None)
                if i is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[i] = cls.strategic_merge(out[i], item)
            return out
        return copy.deepcopy(patch)

    def check_components(self, docs, kust: dict, image_names: set, image_paths: set[str]) -> None:
        base_tag = next((str(i.get("newTag")) for i in kust.get("images") or []
                         if i.get("name") == "flint" and i.get("newTag") is not None), None)
        for kfile in sorted(self.dir.glob("components/*/kustomization.yaml")):
            cdir = kfile.parent
            cname = f"components/{cdir.name}"
            comp = yaml.safe_load(kfile.read_text()) or {}
            if comp.get("kind") != "Component" or comp.get("apiVersion") != "kustomize.config.k8s.io/v1alpha1":
                self.err(cname, "kustomization.yaml is not a kustomize.config.k8s.io/v1alpha1 Component")
            listed = {p.get("path") for p in comp.get("patches") or []}
            present = {p.name for p in cdir.glob("*.yaml") if p.name != "kustomization.yaml"}
            if listed != present:
                self.err(cname, f"patches {sorted(listed)} != patch files {sorted(present)}")
            merged = [(f, d) for f, d in docs]
            for pname in sorted(listed & present):
                for patch in yaml.safe_load_all((cdir / pname).read_text()):
                    if patch is None:
                        continue
                    target = (patch.get("kind"), (patch.get("metadata") or {}).get("name"))
                    i = next((i for i, (_, d) in enumerate(merged)
                              if (d.get("kind"), d["metadata"].get("name")) == target), None)
                    if i is None:
                        self.err(f"{cname}/{pname}", f"patches {target}, which k8s-manifests/ does not have")
                        continue
                    self.check_patch_names(f"{cname}/{pname}", merged[i][1], patch)
                    merged[i] = (f"{cname}/{pname}", self.strategic_merge(merged[i][1], patch))
            for f, d in merged:
                if f.startswith(cname) and d.get("kind") == "ReplicationController":
                    self.check_rc(f, d, image_names, image_paths)
                    self.check_spark_worker(f, d, base_tag)

    def check_patch_names(self, where: str, base: dict, patch: dict) -> None:
        """A strategic merge adds what it does not find: a misspelled container is a new one."""
        pod = ((patch.get("spec") or {}).get("template") or {}).get("spec") or {}
        base_pod = base["spec"]["template"]["spec"]
        for c in pod.get("containers") or []:
            if c.get("name") not in {b["name"] for b in base_pod.get("containers") or []}:
                self.err(where, f"patches container {c.get('name')!r}, which the base pod does not have")
        for v in pod.get("volumes") or []:
            if v.get("name") not in {b["name"] for b in base_pod.get("volumes") or []}:
                self.err(where, f"patches volume {v.get('name')!r}, which the base pod does not have")

    def check_spark_worker(self, where: str, rc: dict, base_tag: str | None) -> None:
        """Workers on the Spark variant: its tag, and room for the executors' JVMs off heap."""
        for c in rc["spec"]["template"]["spec"].get("containers") or []:
            image = str(c.get("image", ""))
            name, _, tag = image.partition(":")
            m = re.fullmatch(r"(.*)-spark(\d+\.\d+)", tag)
            if not m:
                continue
            if base_tag is not None and m.group(1) != base_tag:
                self.err(where, f"image {image}: the Spark variant of flint:{base_tag} is flint:{base_tag}-spark{m.group(2)} "
                                "(tests/k8s/build-image.sh --with-spark)")
            if (c.get("command") or [None])[0] != "/start-worker":
                self.err(where, f"image {image} is the worker variant, but {c['name']} does not run /start-worker")
            env = {e["name"]: e for e in c.get("env") or []}
            if "SPARK_WORKER_MEMORY" in env or "FLINT_WORKER_MEMORY_LIMIT_MB" not in env:
                continue
            limits = (c.get("resources") or {}).get("limits") or {}
            if "cpu" not in limits:
                continue
            cores = math.ceil(parse_cpu(limits["cpu"]))
            headroom = int(str((env.get("FLINT_WORKER_MEMORY_HEADROOM_MB") or {}).get("value", "512")))
            # Spark's default off-heap overhead of an executor is 384 MiB (at least), and a
            # worker runs at most one executor per core; 256 MiB for flint-worker itself.
            need = 384 * cores + 256
            if headroom < need:
                self.err(where, f"FLINT_WORKER_MEMORY_HEADROOM_MB {headroom} leaves too little for {cores} executor "
                                f"JVMs off heap (384 MiB each) and the worker: at least {need}")


def check(manifest_dir: Path, source_root: Path) -> list[str]:
    return Checker(manifest_dir, source_root).run()


def main(argv: list[str]) -> int:
    manifest_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "k8s-manifests"
    source_root = Path(argv[2]) if len(argv) > 2 else ROOT
    errors = check(manifest_dir, source_root)
    for e in errors:
        print(f"ERROR {e}")
    if errors:
        print(f"{len(errors)} problem(s) in {manifest_dir}")
        return 1
    print(f"OK: {manifest_dir} is consistent with the image, the binaries and the recipe")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
